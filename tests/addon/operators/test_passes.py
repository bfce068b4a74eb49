"""The render engine's passes: Blender's Depth and the add-on's masks, covered pixels and preview,
registered for the view layer and written into a multilayer EXR by an animation render, equal to
what `python -m engine preview` writes for the same edits."""
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dh_synthetic import REPO_ROOT, addon_module, duplicate, import_photo, make_photo, write_keyframes  # noqa: E402


def _exr_channels(path):
    """{channel name: (H, W) float32, top row first} of a (multilayer) EXR file."""
    import OpenEXR

    with OpenEXR.File(str(path), separate_channels=True) as f:  # Blender writes one part per pass
        return {name: np.asarray(c.pixels, np.float32) for part in f.parts for name, c in part.channels.items()}


def _channel(channels, pass_name, chan):
    """A pass's channel by its name in Blender's multilayer layout ('<layer>.<pass>.<channel>')."""
    found = [k for k in channels if k.endswith(f".{pass_name}.{chan}")]
    assert len(found) == 1, (pass_name, sorted(channels))
    return channels[found[0]]


def test_passes_are_registered_and_written_to_multilayer_exr(addon, tmp_path):
    from blender_session import bpy
    from engine.io import load_depth, load_image, load_mask
    from mathutils import Vector

    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(8, 16, 4, 12))
    obj = import_photo(bpy, photo, tmp_path)
    cache = Path(bpy.path.abspath(obj.dh.cache_dir))
    scene = bpy.context.scene
    copy = duplicate(bpy, obj)
    copy.location = copy.location + Vector((1.0, 0.0, 0.0))  # camera +X
    obj.hide_render = False
    obj.keyframe_insert("hide_render", frame=1)
    obj.hide_render = True
    obj.keyframe_insert("hide_render", frame=2)

    view_layer = bpy.context.view_layer
    view_layer.use_pass_z = True
    flags = view_layer.diffusion_handles
    flags.use_pass_target = flags.use_pass_objects = flags.use_pass_valid = flags.use_pass_preview = True
    scene.frame_start, scene.frame_end = 1, 2
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth = "32"
    scene.render.filepath = str(tmp_path / "exr" / "f_####")
    assert bpy.ops.render.render(animation=True) == {"FINISHED"}

    T = np.eye(4)
    T[0, 3] = 1.0
    keys = write_keyframes(tmp_path / "t.json", [
        {"copies": [{"of": 1, "matrix": T.tolist()}]},
        {"objects": [{"visible": False}], "copies": [{"of": 1, "matrix": T.tolist()}]}])
    engine = tmp_path / "engine"
    r = subprocess.run([sys.executable, "-m", "engine", "preview", "--image", photo["paths"]["image"],
                        "--depth", photo["paths"]["depth"], "--mask", photo["paths"]["mask"], "--transforms", keys,
                        "--out", engine, "--background", cache / "background.png",
                        "--background-depth", cache / "background_depth.npy"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for k in (1, 2):
        ch = _exr_channels(tmp_path / "exr" / f"f_{k:04d}.exr")
        depth = _channel(ch, "Depth", "Z")
        np.testing.assert_allclose(depth, load_depth(engine / f"edited_depth_{k:04d}.exr"), rtol=1e-6)
        for n in (1, 2):
            want = load_image(engine / f"target_mask_{k:04d}_{n}.png")[..., 0] > 0.5
            assert np.array_equal(_channel(ch, f"DH Mask {n}", "X") > 0.5, want), (k, n)
        assert np.array_equal(_channel(ch, "DH Target", "X") > 0.5, load_mask(engine / f"target_mask_{k:04d}.png"))
        valid = load_image(engine / f"valid_mask_{k:04d}.png")[..., 0] > 0.5
        assert np.array_equal(_channel(ch, "DH Valid", "X") > 0.5, valid)
        # the preview pass holds the preview as the Combined pass does (linear under Standard)
        preview = load_image(engine / f"preview_{k:04d}.png")
        rgb = np.stack([_channel(ch, "DH Preview", c) for c in "RGB"], -1)
        srgb = np.where(rgb <= 0.0031308, rgb * 12.92, 1.055 * np.power(np.clip(rgb, 0, None), 1 / 2.4) - 0.055)
        assert np.abs(srgb - preview).max() < 1 / 255
    # the compositor's Render Layers node offers every registered pass as an output
    tree = bpy.data.node_groups.new("Compositor", "CompositorNodeTree")
    node = tree.nodes.new("CompositorNodeRLayers")
    node.scene, node.layer = scene, view_layer.name
    outputs = {s.name for s in node.outputs if s.enabled}
    assert {"Image", "Depth", "DH Target", "DH Mask 1", "DH Mask 2", "DH Valid", "DH Preview"} <= outputs, outputs
    flags.use_pass_preview = False  # a pass turned off is not offered
    node = tree.nodes.new("CompositorNodeRLayers")
    node.scene, node.layer = scene, view_layer.name
    assert "DH Preview" not in {s.name for s in node.outputs if s.enabled}
    # frame 2 removed the original: its mask pass is empty while the copy's is not
    ch = _exr_channels(tmp_path / "exr" / "f_0002.exr")
    assert _channel(ch, "DH Mask 1", "X").max() == 0 and _channel(ch, "DH Mask 2", "X").max() == 1


def test_passes_of_a_failed_frame_are_not_written_and_a_missing_part_is_refused(addon, tmp_path):
    import shutil

    import pytest
    from blender_session import bpy

    frames, errors = addon_module("session.frames"), addon_module("session.errors")
    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(8, 16, 4, 12))
    obj = import_photo(bpy, photo, tmp_path)
    scene = bpy.context.scene
    source = addon_module("blender.frames").frame_source(obj, "PREVIEW", scene=scene)
    renderer = source.renderer()
    edit = addon_module("blender.frames").frame_edit(obj)
    with pytest.raises(errors.AddonError, match="render pass 'DH Mask 2': this frame has 1 object"):
        renderer.passes(edit, [frames.mask_pass(2)], 24, 32)
    half = renderer.passes(edit, [frames.PASS_DEPTH, frames.mask_pass(1)], 12, 16)  # a render at 50 %
    assert half["Depth"].shape == (12, 16) and set(np.unique(half["DH Mask 1"])) == {0.0, 1.0}

    # a frame that fails writes no EXR, passes or not
    bpy.context.view_layer.use_pass_z = True
    bpy.context.view_layer.diffusion_handles.use_pass_objects = True
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    scene.render.filepath = str(tmp_path / "exr" / "f_####")
    scene.frame_start = scene.frame_end = 1
    shutil.rmtree(bpy.path.abspath(obj.dh.cache_dir))
    shutil.rmtree(tmp_path / "photo")  # its sources too (a missing cache alone is rebuilt: test_caches.py)
    frames.forget()
    with pytest.raises(RuntimeError, match="sources are gone too"):
        bpy.ops.render.render(animation=True)
    assert not (tmp_path / "exr").exists() or list((tmp_path / "exr").iterdir()) == []


def test_the_compositor_example_of_the_docs_paints_the_copy(addon, tmp_path):
    """docs/addon.md's compositor example: the copy's mask pass mixes red over the render."""
    from blender_session import bpy
    from mathutils import Vector
    from PIL import Image

    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(8, 16, 4, 12))
    obj = import_photo(bpy, photo, tmp_path)
    scene = bpy.context.scene
    copy = duplicate(bpy, obj)
    copy.location = copy.location + Vector((1.0, 0.0, 0.0))
    # --- as in docs/addon.md
    scene.view_layers["ViewLayer"].diffusion_handles.use_pass_objects = True
    tree = bpy.data.node_groups.new("DH Compositing", "CompositorNodeTree")
    scene.compositing_node_group = tree
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    layers = tree.nodes.new("CompositorNodeRLayers")
    mix = tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs["B"].default_value = (1.0, 0.0, 0.0, 1.0)
    out = tree.nodes.new("NodeGroupOutput")
    tree.links.new(layers.outputs["DH Mask 2"], mix.inputs["Factor"])
    tree.links.new(layers.outputs["Image"], mix.inputs["A"])
    tree.links.new(mix.outputs["Result"], out.inputs["Image"])
    # ---
    scene.render.filepath = str(tmp_path / "red.png")
    scene.render.image_settings.file_format = "PNG"
    assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
    rgb = np.asarray(Image.open(tmp_path / "red.png").convert("RGB")).astype(int)
    red = (rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 0)
    frames = addon_module("session.frames")
    renderer = addon_module("blender.frames").frame_source(obj, "PREVIEW", scene=scene).renderer()
    edit = addon_module("blender.frames").frame_edit(obj)
    mask = renderer.passes(edit, [frames.mask_pass(2)], 24, 32)[frames.mask_pass(2)][::-1] > 0.5
    assert mask.any() and np.array_equal(red, mask)
