"""Caches travel with the work (issue 29, item 2): a photo's cache waits in a temporary folder until
the first save, then lives beside the .blend (relative); a .blend moved alone rebuilds it from the
photo's sources with one line and renders the same frames; sources gone too: it asks for them; an
uninstall of the extension keeps every cache."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from blender_session import bpy  # noqa: E402
from dh_synthetic import REPO_ROOT, addon_module, make_photo  # noqa: E402


def _import(photo, **kwargs):
    p = photo["paths"]
    assert bpy.ops.dh.import_photo(filepath=str(p["image"]), depth_path=str(p["depth"]), mask_path=str(p["mask"]),
                                   prompt="a box", **kwargs) == {"FINISHED"}
    return bpy.context.view_layer.objects.active


def _key(obj, frames=3):
    from engine.transforms import frame_to_matrix

    keyed = [(1, np.eye(4)), (frames, frame_to_matrix({"translation": [0.25, 0.0, 0.0], "rotation_axis": [0, 1, 0],
                                                        "rotation_angle": 20.0}, np.array(obj.dh.centroid)))]
    addon_module("blender.keyframes").key_transforms(obj, keyed, bpy.context.scene)


def _render(folder):
    from PIL import Image

    scene = bpy.context.scene
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(folder / "f_####")
    assert bpy.ops.render.render(animation=True) == {"FINISHED"}
    return [np.asarray(Image.open(folder / f"f_{k:04d}.png")) for k in range(scene.frame_start, scene.frame_end + 1)]


def _handle():
    return next(o for o in bpy.data.objects if o.dh.role == "OBJECT" and o.dh.handle in (None, o))


def _keys(obj):
    return [tuple(k.co) for c in obj.animation_data.action.fcurves for k in c.keyframe_points] \
        if hasattr(obj.animation_data.action, "fcurves") else \
        [tuple(k.co) for layer in obj.animation_data.action.layers for strip in layer.strips
         for bag in strip.channelbags for c in bag.fcurves for k in c.keyframe_points]


def test_the_cache_moves_beside_the_blend_and_a_blend_moved_alone_renders_the_same(addon, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    photo = make_photo(tmp_path / "photo")
    obj = _import(photo)  # no cache folder named, the .blend not saved yet
    waiting = Path(bpy.path.abspath(obj.dh.cache_dir))
    assert waiting.is_dir() and Path(addon_module("session.photo").unsaved_cache_root()) == waiting.parent
    extension = bpy.utils.extension_path_user(addon.__name__, create=False)
    assert not str(waiting).startswith(extension) and not str(waiting).startswith(str(REPO_ROOT))
    assert list(work.iterdir()) == []
    _key(obj)
    project = tmp_path / "project"
    project.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "scene.blend"))
    assert obj.dh.cache_dir == f"//scene_dh_cache/{waiting.name}"  # relative, beside the .blend
    assert (project / "scene_dh_cache" / waiting.name / "depth.npy").is_file() and not waiting.exists()
    assert all(not i.filepath or Path(bpy.path.abspath(i.filepath)).is_file() for i in bpy.data.images)
    before = _render(tmp_path / "before")
    keys = _keys(obj)

    # the .blend alone, to another folder: its cache is made again from the photo's sources
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(project / "scene.blend", moved / "scene.blend")
    bpy.ops.wm.open_mainfile(filepath=str(moved / "scene.blend"))
    addon_module("session.frames").forget()
    cls = addon_module("operators.render_engine").DiffusionHandlesRenderEngine
    warnings = []
    original = cls.warn
    monkeypatch.setattr(cls, "warn", lambda self, text: (warnings.append(text), original(self, text)))
    after = _render(tmp_path / "after")
    assert [w for w in warnings if "rebuilt from the photo's sources" in w] == warnings and len(warnings) == 1
    assert (moved / "scene_dh_cache" / waiting.name / "depth.npy").is_file()
    for a, b in zip(before, after):
        assert np.array_equal(a, b)
    assert _keys(_handle()) == keys  # every keyframe kept

    # the sources gone too: it asks for them, names where, writes no frame
    gone = tmp_path / "photo-moved"
    shutil.move(str(tmp_path / "photo"), str(gone))
    shutil.rmtree(moved / "scene_dh_cache")
    addon_module("session.frames").forget()
    with pytest.raises(RuntimeError, match="sources are gone too.*Render Properties > Diffusion Handles"):
        _render(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists() or not list((tmp_path / "nothing").iterdir())
    # pointed at the files' new place (the Render panel's fields): the same frames again
    handle = _handle()
    handle.dh.image_path = str(gone / "image.png")
    handle.dh.depth_path = str(gone / "depth.npy")
    handle.dh.mask_path = str(gone / "mask.png")
    for a, b in zip(before, _render(tmp_path / "pointed")):
        assert np.array_equal(a, b)


def test_a_relative_cache_folder_before_the_first_save_waits_then_moves(addon, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    obj = _import(make_photo(tmp_path / "photo"), cache_dir="//caches")
    assert list(work.iterdir()) == []  # never the process's working folder
    name = Path(bpy.path.abspath(obj.dh.cache_dir)).name
    (tmp_path / "project").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "project" / "shot.blend"))
    assert obj.dh.cache_dir == f"//caches/{name}" and (tmp_path / "project" / "caches" / name / "image.png").is_file()
    # File > Save Copy elsewhere: the open file keeps paths that are right for itself
    (tmp_path / "copy").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "copy" / "copy.blend"), copy=True)
    assert Path(bpy.path.abspath(obj.dh.cache_dir)) == tmp_path / "project" / "caches" / name
    assert _render(tmp_path / "frames")


# A fresh Blender (the bpy module, its own user folders) installs the built extension, imports a
# photo, saves, and uninstalls the extension, as an artist does.
UNINSTALL = r'''
import json, os, sys
user, zip_path, photo, project = sys.argv[1:5]
for name, sub in (("BLENDER_USER_EXTENSIONS", "ext"), ("BLENDER_USER_CONFIG", "cfg"), ("BLENDER_USER_SCRIPTS", "scr")):
    os.environ[name] = os.path.join(user, sub)
import bpy
repos = bpy.context.preferences.extensions.repos
index = next(i for i, r in enumerate(repos) if r.module == "user_default")
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True) == {"FINISHED"}
user_folder = bpy.utils.extension_path_user("bl_ext.user_default.diffusion_handles", create=True)
bpy.ops.dh.import_photo(filepath=os.path.join(photo, "image.png"), depth_path=os.path.join(photo, "depth.npy"),
                        mask_path=os.path.join(photo, "mask.png"))
obj = bpy.context.view_layer.objects.active
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(project, "scene.blend"))
cache = bpy.path.abspath(obj.dh.cache_dir)
assert bpy.ops.extensions.package_uninstall(repo_index=index, pkg_id="diffusion_handles") == {"FINISHED"}
print("RESULT", json.dumps({"cache": cache, "user_folder": user_folder, "user_folder_left": os.path.exists(user_folder),
                            "files": sorted(os.listdir(cache))}), flush=True)
'''


@pytest.mark.slow
def test_an_uninstall_keeps_the_caches(tmp_path):
    build = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "blender_ext.py"), "build", "--output-dir",
                            str(tmp_path / "zip")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    make_photo(tmp_path / "photo")
    (tmp_path / "project").mkdir()
    run = subprocess.run([sys.executable, "-c", UNINSTALL, str(tmp_path / "user"), str(next((tmp_path / "zip").iterdir())),
                          str(tmp_path / "photo"), str(tmp_path / "project")], capture_output=True, text=True,
                         timeout=300, cwd=str(tmp_path))
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    result = json.loads(next(line for line in log.splitlines() if line.startswith("RESULT "))[7:])
    assert not result["user_folder_left"]  # the uninstall removed the extension's own folder...
    assert Path(result["cache"]).parent == (tmp_path / "project" / "scene_dh_cache")  # ...not the caches
    assert {"image.png", "depth.npy", "background.png"} <= set(result["files"])
