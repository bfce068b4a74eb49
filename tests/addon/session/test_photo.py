"""session/photo.py: Import Photo's inputs become the engine's PhotoInputs, written to the photo's
cache folder and read back by the engine; a cache gone or damaged is one add-on error."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module, make_photo  # noqa: E402

OPTIONS = {"models_dir": None, "overrides": {}, "device": "cpu"}


def _two_objects(tmp_path):
    """A photo with two objects given as mask files (no model runs), imported into a cache."""
    from PIL import Image

    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(6, 16, 4, 12))
    second = np.zeros_like(photo["mask"])
    second[8:20, 18:28] = True
    Image.fromarray(second.astype(np.uint8) * 255).save(tmp_path / "second.png")
    paths = photo["paths"]
    masks = f"{paths['mask']};{tmp_path / 'second.png'}"
    inputs, cache, _ = addon_module("session.photo").import_inputs(
        str(tmp_path / "cache"), "photo", str(paths["image"]), str(paths["depth"]), masks, "", 0, OPTIONS,
        lambda *args: None)
    return inputs, cache, photo, second


def test_import_writes_a_cache_the_engine_reads_back_exactly(addon, tmp_path):
    from engine.images import to_uint8

    PhotoInputs = addon_module("engine.inputs").PhotoInputs
    inputs, cache, photo, second = _two_objects(tmp_path)
    assert isinstance(inputs, PhotoInputs)
    assert np.array_equal(inputs.masks[0], photo["mask"]) and np.array_equal(inputs.masks[1], second)
    assert inputs.background_image is not None and inputs.background_depth is not None
    photo_module = addon_module("session.photo")
    assert photo_module.import_note(inputs, "") == "; 2 objects, each moved and keyed on its own"
    back = photo_module.load_cache(cache)
    assert isinstance(back, PhotoInputs)
    assert np.array_equal(back.image, inputs.image) and np.array_equal(back.depth, photo["depth"])
    assert np.array_equal(back.masks, inputs.masks)
    assert np.array_equal(back.background_depth, inputs.background_depth)
    assert np.array_equal(to_uint8(back.background_image), to_uint8(inputs.background_image))


@pytest.mark.parametrize("damage", ["gone", "missing depth", "damaged masks"])
def test_a_lost_or_damaged_cache_is_one_error_saying_to_import_again(addon, tmp_path, damage):
    _, cache, _, _ = _two_objects(tmp_path)
    if damage == "gone":
        shutil.rmtree(cache)
    elif damage == "missing depth":
        (Path(cache) / "depth.npy").unlink()
    else:
        (Path(cache) / "masks.npy").write_bytes(b"\x93NUMPY garbage")
    errors = addon_module("session.errors")
    with pytest.raises(errors.AddonError) as caught:
        addon_module("session.photo").load_cache(cache)
    message = errors.user_message(caught.value)
    assert cache in message and "import the photo again" in message and "\n" not in message
    assert damage == "gone" or ("depth.npy" if damage == "missing depth" else "masks.npy") in message
