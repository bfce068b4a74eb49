"""Pick Object driven by mouse and key events in the Image Editor showing the photo (a tiny SAM):
points added and removed with the mask following them, Esc leaving the scene and the cache as they
were, Enter lifting an object whose mask is `engine prepare --point`'s for the same points."""
import hashlib
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, import_photo, make_photo  # noqa: E402

W, H = 32, 24
ZOOM, OX, OY = 2.0, 10.0, 20.0  # the editor shows the photo at 200 %, its corner at (10, 20)


@pytest.fixture(scope="module")
def models(tiny_models_dir, tmp_path_factory):
    """The tiny models with a tiny SAM whose random weights give a small part of this photo for the
    clicks below (a mask of nearly all of it would leave no background)."""
    from engine.perception.tiny import write_tiny_sam

    out = tmp_path_factory.mktemp("pick-models")
    shutil.copytree(tiny_models_dir, out, dirs_exist_ok=True)
    shutil.rmtree(out / "sam")
    write_tiny_sam(out / "sam", seed=8)
    return out


class _View2D:
    def view_to_region(self, x, y, clip=True):
        return OX + x * W * ZOOM, OY + y * H * ZOOM


class PickContext:
    """bpy.context with an Image Editor showing the photo and a recording window manager."""

    def __init__(self, image):
        self._real = bpy.context
        self.area = SimpleNamespace(type="IMAGE_EDITOR", header_text_set=lambda text: None, tag_redraw=lambda: None)
        self.space_data = SimpleNamespace(image=image)
        self.region = SimpleNamespace(view2d=_View2D())
        self.handlers = []
        self.window_manager = SimpleNamespace(modal_handler_add=self.handlers.append)

    def __getattr__(self, name):
        return getattr(self._real, name)


def click(x, y, shift=False, ctrl=False, kind="LEFTMOUSE"):
    """A press at photo pixel (x, y) (x the column, y the row from the top)."""
    return SimpleNamespace(type=kind, value="PRESS", shift=shift, ctrl=ctrl,
                           mouse_region_x=OX + x * ZOOM, mouse_region_y=OY + (H - y) * ZOOM)


def key(kind):
    return SimpleNamespace(type=kind, value="PRESS", shift=False, ctrl=False, mouse_region_x=0, mouse_region_y=0)


def _driver():
    """The operator's own methods on a plain object (Blender makes operator instances only inside its
    own operator calls, where modal tools cannot run headless)."""
    cls = addon_module("operators.pick").DH_OT_pick_object
    methods = {name: cls.__dict__[name] for name in ("invoke", "modal", "accept", "finish", "status", "draw_overlay")}
    driver = type("PickDriver", (), methods)()
    driver.reports = []
    driver.report = lambda kinds, message: driver.reports.append((next(iter(kinds)), message))
    return driver


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}


@pytest.fixture
def picking(addon, tmp_path, models):
    models_mod = addon_module("session.store")
    models_mod.SESSION_OPTIONS.update(models_dir=str(models), device="cpu")
    photo = make_photo(tmp_path / "photo", height=H, width=W, box=(8, 16, 4, 12))
    obj = import_photo(bpy, photo, tmp_path)
    image = next(i for i in bpy.data.images if tuple(i.size) == (W, H) and i.name.endswith("Photo"))
    try:
        yield obj, photo, PickContext(image)
    finally:
        models_mod.SESSION_OPTIONS.clear()


def test_clicks_add_and_remove_points_and_the_mask_follows(picking, models):
    from engine.perception.segment import mask_from_points

    obj, photo, context = picking
    op = _driver()
    assert op.invoke(context, key("NONE")) == {"RUNNING_MODAL"}, op.reports
    assert context.handlers == [op] and op.pick.mask is None
    assert op.modal(context, click(24.5, 10.5)) == {"RUNNING_MODAL"}
    assert op.pick.points == [(24.5, 10.5, 1)]
    assert np.array_equal(op.pick.mask, mask_from_points(photo["image"], [(24.5, 10.5)], models_dir=models))
    op.modal(context, click(2.5, 2.5, shift=True))
    assert op.pick.points[-1] == (2.5, 2.5, 0)
    assert np.array_equal(op.pick.mask, mask_from_points(photo["image"], [(24.5, 10.5)], [(2.5, 2.5)],
                                                         models_dir=models))
    op.modal(context, key("BACK_SPACE"))
    assert op.pick.points == [(24.5, 10.5, 1)]
    op.modal(context, click(24.0, 11.0, ctrl=True))  # removes the nearest point
    assert op.pick.points == [] and op.pick.mask is None
    assert op.modal(context, click(-3.0, 5.0)) == {"RUNNING_MODAL"}  # outside the photo: a warning
    assert op.pick.points == [] and op.reports[-1][0] == "WARNING"
    assert op.modal(context, key("MOUSEMOVE")) == {"PASS_THROUGH"}  # navigation goes on
    # Enter without a point on the object: refused, the pick goes on
    assert op.modal(context, key("RET")) == {"RUNNING_MODAL"} and op.reports[-1][0] == "ERROR"


def test_escape_leaves_the_scene_and_the_cache_untouched(picking):
    obj, _, context = picking
    cache = bpy.path.abspath(obj.dh.cache_dir)
    before = _digest(cache), sorted(o.name for o in bpy.data.objects), len(bpy.data.meshes)
    op = _driver()
    op.invoke(context, key("NONE"))
    op.modal(context, click(24.5, 10.5))
    assert op.pick.mask is not None
    assert op.modal(context, key("ESC")) == {"CANCELLED"}
    assert (_digest(cache), sorted(o.name for o in bpy.data.objects), len(bpy.data.meshes)) == before


def test_enter_lifts_the_object_prepare_finds_with_the_same_points(picking, models, tmp_path):
    from cli_photo import FAST
    from engine.cli import main
    from engine.prepared import Prepared

    obj, photo, context = picking
    op = _driver()
    op.invoke(context, key("NONE"))
    op.modal(context, click(24.5, 10.5))
    assert op.modal(context, key("RET")) == {"FINISHED"}, op.reports
    matrices = addon_module("blender.matrices")
    objects = matrices.moving_objects(obj)
    assert len(objects) == 2 and objects[1].dh.object_index == 1 and not matrices.is_copy(objects[1])
    picked = objects[1]
    assert bpy.context.view_layer.objects.active == picked

    prep = tmp_path / "prep"
    rc = main(["prepare", "--image", str(photo["paths"]["image"]), "--prompt", "a box", "--depth",
               str(photo["paths"]["depth"]), "--point", "24.5,10.5", "--out", str(prep), "--models", str(models),
               *FAST])
    assert rc == 0
    want = Prepared.load(prep).photo_mask & ~photo["mask"]  # a pixel of object 1 stays object 1's
    cache = addon_module("session.photo").load_cache(bpy.path.abspath(obj.dh.cache_dir))
    assert cache.masks.shape == (2, H, W)
    assert np.array_equal(cache.masks[0], photo["mask"]) and np.array_equal(cache.masks[1], want)
    assert len(picked.data.vertices) == want.sum()
    # it renders like an imported object: moved, it leaves the frame's target with its own mask
    frames = addon_module("blender.frames")
    edit = frames.frame_edit(obj)
    assert len(edit.objects) == 2
    # and a second pick adds a third object
    op = _driver()
    op.invoke(context, key("NONE"))
    assert len(op.pick.inputs.masks) == 2


def test_a_click_through_the_camera_lands_on_the_photo_pixel_it_shows(picking):
    """The 3D Viewport looking through the photo's camera: the point a pixel's centre is lifted to
    appears where a click maps back to that pixel."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d
    from mathutils import Vector

    obj, photo, _ = picking
    scene_mod = addon_module("blender.scene")
    camera = obj.dh.camera
    region = SimpleNamespace(width=W * 3, height=H * 3)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    projection = camera.calc_matrix_camera(depsgraph, x=region.width, y=region.height)
    rv3d = SimpleNamespace(view_perspective="CAMERA", perspective_matrix=projection @ camera.matrix_world.inverted())
    context = SimpleNamespace(area=SimpleNamespace(type="VIEW_3D"), region=region, region_data=rv3d,
                              scene=bpy.context.scene)
    rect = scene_mod.photo_rect(context, obj)
    from engine.camera import Camera

    lifted = Camera(H, W).lift(photo["depth"].astype(np.float64))
    for i, j in ((9, 5), (15, 11), (3, 28)):
        world = camera.matrix_world @ Vector(lifted[i, j])
        x, y = location_3d_to_region_2d(region, rv3d, world)
        u, v = scene_mod.region_to_photo(rect, x, y, obj)
        assert abs(u - (j + 0.5)) < 1e-3 and abs(v - (i + 0.5)) < 1e-3, (i, j, u, v)
    rv3d.view_perspective = "PERSP"
    with pytest.raises(addon_module("session.errors").AddonError, match="look through the photo's camera"):
        scene_mod.photo_rect(context, obj)
