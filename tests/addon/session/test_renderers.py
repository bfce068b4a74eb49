"""session/renderers.py: both frame renderers give frames at the photo's size, far pixels the photo's."""
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module, make_photo  # noqa: E402


def _inputs(tmp_path):
    """A photo four times the tiny model's working size (96 x 128 against 32 on the longer side)."""
    photo = make_photo(tmp_path / "photo", height=96, width=128, box=(30, 62, 40, 80))
    paths = photo["paths"]
    inputs = addon_module("session.photo").load_inputs(str(paths["image"]), str(paths["depth"]), str(paths["mask"]))
    return addon_module("engine.inputs").complete(inputs, background=True), photo


def _translation(dx):
    T = np.eye(4)
    T[0, 3] = dx
    return T


def _far(inputs, margin):
    from engine.lifted import compute_edit_geometry

    g = compute_edit_geometry(inputs.depth, inputs.mask, _translation(0.3))
    return ~ndimage.binary_dilation(inputs.mask | g.target_mask, iterations=margin)


def _bytes(rgb):
    from engine.images import to_uint8

    return to_uint8(rgb)


def test_preview_renderer_at_photo_size(addon, tmp_path):
    inputs, _ = _inputs(tmp_path)
    renderer = addon_module("session.renderers").PreviewRenderer(inputs)
    (frame,) = renderer([_translation(0.3)])
    assert frame.shape == (96, 128, 3)
    far = _far(inputs, 8)
    assert np.array_equal(_bytes(frame)[far], _bytes(inputs.image)[far])


@pytest.mark.slow
def test_diffusion_renderer_at_photo_size(addon, tmp_path, tiny_models_dir):
    from engine.pipeline import Engine
    from engine.settings import EditSettings

    inputs, _ = _inputs(tmp_path)
    engine = Engine(models_dir=tiny_models_dir, device="cpu", dtype="fp32",
                    settings=EditSettings(resolution=32, steps=3, guided_steps=2, inversion="ddim"))
    prepared = engine.prepare(inputs.image, "an orange box", inputs.depth, inputs.mask)
    assert max(prepared.size) == 32  # the working size (its aspect: tests/engine/test_pipeline.py)
    renderer = addon_module("session.renderers").DiffusionRenderer(inputs, engine, prepared)
    (frame,) = renderer([_translation(0.3)])
    assert frame.shape == (96, 128, 3)
    # far from what the edit changed (a region the random model's changes decide) the photo's own
    # bytes; near it the edit shows (the photo's pixels do not come back unchanged)
    from engine.composite import changed_region
    from engine.images import resize_nearest

    result = engine.edit(prepared, [_translation(0.3)])[0]
    near = resize_nearest(changed_region(prepared, result), (96, 128))
    far = ~ndimage.binary_dilation(near, iterations=8)
    assert far.any() and near.any()
    assert np.array_equal(_bytes(frame)[far], _bytes(inputs.image)[far])
    assert not np.array_equal(_bytes(frame)[near], _bytes(inputs.image)[near])
    # the photo's own settings reach each edit: without guidance weights another frame comes out
    renderers = addon_module("session.renderers")
    unguided = renderers.DiffusionRenderer(inputs, engine, prepared, settings=engine.settings.replace(weight_scale=0.0))
    (plain,) = unguided([_translation(0.3)])
    assert plain.shape == frame.shape and not np.array_equal(plain, frame)


def test_the_frame_renderer_renders_each_frame_content_once(addon, tmp_path):
    """FrameRenderer (session/frames.py) sends the base renderer each new key once, in order (the
    engine's one rule for equal frames), and a later call gets remembered frames without a render."""
    inputs, _ = _inputs(tmp_path)
    frames = addon_module("session.frames")
    base = addon_module("session.renderers").PreviewRenderer(inputs)
    calls = []

    class Counting:
        name, batch_size, inputs = base.name, 4, base.inputs

        def __call__(self, edits, progress=None, should_cancel=None):
            calls.append([float(e.objects[0][0, 3]) for e in edits])
            return base(edits, progress, should_cancel)

    frames.forget()
    source = frames.FrameSource("PREVIEW", str(tmp_path), "", inputs.shape, "dedup test")
    renderer = frames.FrameRenderer(Counting(), source)
    a, b = _translation(0.3), _translation(-0.2)
    out = renderer([a, b, a + 1e-9, np.eye(4), b])
    assert calls == [[0.3, -0.2, 0.0]]
    assert len(out) == 5 and out[2] is out[0] and out[4] is out[1] and out[0].dtype == np.uint8
    assert not np.array_equal(out[0], out[1])
    again = renderer([np.eye(4), b, _translation(0.1)])
    assert calls[1:] == [[0.1]] and again[0] is out[3] and again[1] is out[1]
    frames.forget()


def test_preview_renderer_says_what_the_engine_says_of_a_lost_object(addon, tmp_path):
    """The frame renderer's visibility lines are the engine's own (EditGeometry.notes): out of view
    for an object that left the frame, said in the render engine's report line."""
    frames = addon_module("session.frames")
    inputs, _ = _inputs(tmp_path)
    renderer = addon_module("session.renderers").PreviewRenderer(inputs)
    renderer([np.eye(4), _translation(50.0)])
    assert renderer.last_notes == [(), ("object 1 out of view",)]
    assert renderer.last_visible == [(True,), (False,)]
    assert frames.out_of_view_note(renderer.last_notes[1]) == "object 1 out of view"
    assert frames.out_of_view_note(()) == ""


def test_pick_flags_a_mask_covering_most_of_the_photo(addon, tmp_path):
    pick = addon_module("session.pick").Pick(str(tmp_path), {})
    assert pick.warning is None  # no mask yet
    pick.mask = np.zeros((10, 10), bool)
    pick.mask[:8] = True  # 80 % of the photo
    assert pick.warning == ("Pick Object: the mask covers 80% of the photo; Shift+click on what is not the object, "
                            "or click nearer its middle")
    pick.mask[3:] = False  # 30 %: an object
    assert pick.warning is None
