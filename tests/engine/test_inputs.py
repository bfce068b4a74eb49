"""engine.inputs: the one input boundary (files -> checked PhotoInputs, no model), and a photo's
folder format written and read back through it."""
from __future__ import annotations

import numpy as np
import pytest

from engine import io
from engine.errors import InputError
from engine.inputs import (INFO_FILE, MASKS_FILE, PHOTO_FILES, check_visible, complete, fill_background,
                           load_photo, load_photo_folder, photo_folder_info, save_photo_folder)


@pytest.fixture
def files(tmp_path):
    yy, xx = np.mgrid[0:30, 0:40] / 30.0
    image = np.stack([xx / 1.4, yy, 0.3 + 0 * xx], -1).astype(np.float32)
    depth = (3.0 - yy).astype(np.float32)
    a = np.zeros((30, 40), bool)
    a[5:12, 5:12] = True
    b = np.zeros((30, 40), bool)
    b[15:25, 20:32] = True
    depth[a | b] = 1.5
    io.save_image(tmp_path / "image.png", image)
    np.save(tmp_path / "depth.npy", depth)
    io.save_mask(tmp_path / "a.png", a)
    io.save_mask(tmp_path / "b.png", b)
    return tmp_path


def test_one_and_several_masks(files):
    one = load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png")
    assert one.mask.shape == (30, 40) and one.complete_without_models and one.paths["mask"].endswith("a.png")
    two = load_photo(files / "image.png", "boxes", depth=files / "depth.npy", mask=[files / "a.png", files / "b.png"])
    assert two.mask.shape == (2, 30, 40) and two.union_mask.sum() == one.mask.sum() + 120


@pytest.mark.parametrize("kwargs, fragment", [
    ({"mask": "a.png", "object_query": "the box"}, "not both"),
    ({}, "--mask or --object"),
    ({"mask": "a.png", "candidate": 1}, "only meaningful"),
    ({"object_query": "the box", "candidate": [0, 1]}, "given 2 times"),
    ({"object_query": "the box", "candidate": True}, "candidate number"),
    ({"mask": "a.png", "prompt": "caf\udce9"}, "UTF-8"),
])
def test_refusals(files, kwargs, fragment):
    kwargs = {k: files / v if k == "mask" else v for k, v in kwargs.items()}
    prompt = kwargs.pop("prompt", "a box")
    with pytest.raises(InputError, match=fragment):
        load_photo(files / "image.png", prompt, depth=files / "depth.npy", **kwargs)


def test_check_visible(files):
    photo = load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png")
    behind = np.eye(4)
    behind[2, 3] = 5.0
    assert check_visible(photo, [np.eye(4)]) == []
    assert check_visible(photo, [np.eye(4), behind]) == [2]  # that frame renders without the object
    with pytest.raises(InputError, match="transforms: every object is out of view in every frame"):
        check_visible(photo, [behind])


def test_several_masks_are_made_disjoint(files):
    big = np.zeros((30, 40), bool)
    big[3:14, 3:14] = True  # holds all of a.png
    io.save_mask(files / "big.png", big)
    two = load_photo(files / "image.png", "boxes", depth=files / "depth.npy", mask=[files / "big.png", files / "b.png"])
    assert two.mask.shape == (2, 30, 40) and not (two.mask[0] & two.mask[1]).any()
    with pytest.raises(InputError, match=r"^mask 2: empty \(or entirely inside an earlier mask\)"):
        load_photo(files / "image.png", "boxes", depth=files / "depth.npy", mask=[files / "big.png", files / "a.png"])


LABELS = {"image": "Photo", "mask": "Mask File", "object_query": "Object", "candidate": "Candidate",
          "depth": "Depth File"}


@pytest.mark.parametrize("kwargs, message", [
    ({"mask": "a.png", "object_query": "the box"}, r"give either Mask File or Object, not both"),
    ({}, r"Mask File or Object: say which object"),
    ({"mask": "a.png", "candidate": 1}, r"Candidate: only meaningful with Object"),
    ({"object_query": "the box", "candidate": [0, 1]}, r"Candidate: given 2 times for 1 Object queries"),
    ({"mask": "nope.png"}, r"Mask File: mask '.*nope\.png': file not found"),
    ({"mask": ["a.png", "a.png"]}, r"Mask File: mask 2: empty"),
    ({"image": ""}, r"Photo: the photo is required"),
    ({"image": "nope.png", "mask": "a.png"}, r"Photo: image '.*nope\.png': file not found"),
    ({"depth": "nope.npy", "mask": "a.png"}, r"Depth File: depth '.*nope\.npy'?: file not found"),
])
def test_labels_name_the_callers_fields(files, kwargs, message):
    """A caller with its own names (the add-on's fields) gets them in every message; the command
    line's option names never appear."""
    def path(v):
        return [files / p for p in v] if isinstance(v, list) else (files / v if v else v)

    image = path(kwargs.pop("image", "image.png"))
    depth = path(kwargs.pop("depth", "depth.npy"))
    kwargs = {k: path(v) if k == "mask" else v for k, v in kwargs.items()}
    with pytest.raises(InputError, match=message) as caught:
        load_photo(image, "", depth=depth, require_prompt=False, labels=LABELS, **kwargs)
    assert "--" not in str(caught.value)


def test_default_messages_name_the_command_line_options(files):
    with pytest.raises(InputError, match=r"^give either --mask or --object, not both$"):
        load_photo(files / "image.png", "a box", mask=files / "a.png", object_query="the box")
    with pytest.raises(InputError, match=r"^mask '.*nope\.png': file not found$"):  # the file names itself
        load_photo(files / "image.png", "a box", mask=files / "nope.png")
    with pytest.raises(InputError, match=r"^--image: the photo is required$"):
        load_photo("", "a box", mask=files / "a.png")


def test_complete_without_models_leaves_the_background_to_the_caller(files):
    photo = load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png")
    assert complete(photo) is photo and photo.background_image is None and photo.background_depth is None


@pytest.mark.slow
def test_complete_one_object_keeps_its_background_several_do_not(files, tiny_models_dir):
    """One object completed by perception (tiny random-weight models): its background image and
    depth are kept; several: neither (the caller / the engine completes them)."""
    one = complete(load_photo(files / "image.png", "a box", mask=files / "a.png"), models_dir=tiny_models_dir,
                   device="cpu")
    assert one.depth.shape == (30, 40) and one.notes["depth"] == "estimated"
    assert one.background_image.shape == (30, 40, 3) and one.background_depth.shape == (30, 40)
    assert one.background_image.dtype == np.float32
    two = complete(load_photo(files / "image.png", "boxes", mask=[files / "a.png", files / "b.png"]),
                   models_dir=tiny_models_dir, device="cpu")
    assert two.mask.shape == (2, 30, 40) and two.background_image is None and two.background_depth is None


@pytest.mark.slow
def test_complete_candidate_out_of_range(files, tiny_models_dir):
    """The candidate range is checked against what the query found; a caller's labels name it."""
    def attempt(labels):
        photo = load_photo(files / "image.png", "a box", object_query="the box", candidate=7, labels=labels)
        complete(photo, models_dir=tiny_models_dir, device="cpu", candidates_dir=files / "candidates")

    with pytest.raises(InputError, match=r"^candidate 7: only \d candidate\(s\) found for 'the box'"):
        attempt(None)
    with pytest.raises(InputError, match=r"^Candidate: candidate 7: only \d candidate\(s\)"):
        attempt(LABELS)
    assert not (files / "candidates").exists()


def _two_objects(files):
    photo = load_photo(files / "image.png", "", depth=files / "depth.npy", mask=[files / "a.png", files / "b.png"],
                       require_prompt=False)
    return complete(photo, background=True)


def test_complete_with_background_fills_it_without_models(files):
    """Given depth and masks, no model runs; the background the caller asked for is there, with
    the objects' pixels changed and the rest the photo's own."""
    photo = _two_objects(files)
    assert photo.background_image.shape == (30, 40, 3) and photo.background_depth.shape == (30, 40)
    union = photo.union_mask
    far = ~_dilated(union)
    assert np.array_equal(photo.background_image[far], photo.image[far])
    assert not np.array_equal(photo.background_image[union], photo.image[union])
    assert (photo.background_depth[union] > photo.depth[union]).all()  # the wall behind the boxes
    assert photo.masks.shape == (2, 30, 40) and photo.camera.height == 30 and photo.camera.width == 40


def _dilated(mask, px=6):
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=px)


def test_fill_background_keeps_a_given_background_depth_unless_refilled(files):
    bg = np.full((30, 40), 7.0, np.float32)
    np.save(files / "bg.npy", bg)
    photo = load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png",
                       background_depth=files / "bg.npy")
    complete(photo, background=True)
    assert np.array_equal(photo.background_depth, bg) and photo.background_image is not None
    fill_background(photo, refill=True)
    assert not np.array_equal(photo.background_depth, bg)


def test_prepare_arguments_take_the_callers_prompt(files):
    photo = _two_objects(files)
    args = photo.prepare_arguments("two boxes")
    assert args["prompt"] == "two boxes" and args["object_mask"] is photo.mask
    assert args["background_depth"] is photo.background_depth
    assert photo.prepare_arguments()["prompt"] == ""


def test_photo_folder_round_trip_is_exact(files, tmp_path):
    """Several objects: what is read back is what was written, to the bit (the 8-bit PNGs as
    8-bit values; the image came from a PNG, so it is exact too)."""
    from engine.images import to_uint8

    photo = _two_objects(files)
    folder = tmp_path / "folder"
    save_photo_folder(folder, photo, {"image": "somewhere.png"})
    back = load_photo_folder(folder)
    assert np.array_equal(back.image, photo.image)
    assert back.depth.dtype == np.float32 and np.array_equal(back.depth, photo.depth)
    assert back.mask.shape == (2, 30, 40) and np.array_equal(back.mask, photo.mask)
    assert np.array_equal(back.background_depth, photo.background_depth)
    assert np.array_equal(to_uint8(back.background_image), to_uint8(photo.background_image))
    assert photo_folder_info(folder) == {"image": "somewhere.png"}
    # written again from what it read: the same files, byte for byte
    again = tmp_path / "again"
    save_photo_folder(again, back, {"image": "somewhere.png"})
    for name in (*PHOTO_FILES.values(), MASKS_FILE, INFO_FILE):
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name


def test_photo_folder_of_one_object_drops_an_earlier_objects_file(files, tmp_path):
    folder = tmp_path / "folder"
    save_photo_folder(folder, _two_objects(files))
    one = complete(load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png"),
                   background=True)
    save_photo_folder(folder, one)
    back = load_photo_folder(folder)
    assert back.mask.shape == (30, 40) and np.array_equal(back.mask, one.mask)
    assert not (folder / MASKS_FILE).exists()


def _damage(folder, name):
    """Each way a photo folder goes bad; returns the file the message must name."""
    if name == "folder gone":
        import shutil

        shutil.rmtree(folder)
        return None
    if name == "truncated depth":
        data = (folder / "depth.npy").read_bytes()
        (folder / "depth.npy").write_bytes(data[: len(data) // 2])
        return "depth.npy"
    if name == "NaN background depth":
        d = np.load(folder / "background_depth.npy")
        d[3, 3] = np.nan
        np.save(folder / "background_depth.npy", d)
        return "background_depth.npy"
    if name == "overlapping masks":
        m = np.load(folder / MASKS_FILE)
        m[1] |= m[0]
        np.save(folder / MASKS_FILE, m)
        return MASKS_FILE
    if name == "masks of another photo":
        np.save(folder / MASKS_FILE, np.load(folder / MASKS_FILE)[:, :20])
        return MASKS_FILE
    if name == "small background":
        io.save_image(folder / "background.png", np.zeros((10, 10, 3), np.float32))
        return "background.png"
    if name == "not an image":
        (folder / "image.png").write_text("not a png")
        return "image.png"
    (folder / name).unlink()
    return name


@pytest.mark.parametrize("damage", ["folder gone", "depth.npy", "mask.png", "background.png", "truncated depth",
                                    "NaN background depth", "overlapping masks", "masks of another photo",
                                    "small background", "not an image"])
def test_damaged_photo_folder_is_one_error_naming_it(files, tmp_path, damage):
    folder = tmp_path / "folder"
    save_photo_folder(folder, _two_objects(files))
    name = _damage(folder, damage)
    with pytest.raises(InputError) as caught:
        load_photo_folder(folder)
    message = str(caught.value)
    assert message.startswith(f"photo folder '{folder}'") and "\n" not in message
    assert name is None or name in message


def test_an_incomplete_photo_is_not_saved(files, tmp_path):
    photo = load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png")
    with pytest.raises(InputError, match="background"):
        save_photo_folder(tmp_path / "folder", photo)
    assert not (tmp_path / "folder").exists()


# --- depth and masks at another size than the photo (one rule: engine.checks.resampled_size) ---------


def test_resampled_size_rule():
    from engine.checks import resampled_size

    assert resampled_size((3000, 4000), (3000, 4000), "depth") is False
    assert resampled_size((480, 640), (3000, 4000), "depth") is True  # exact 4:3
    assert resampled_size((480, 640), (3003, 4000), "depth") is True  # 480.48 rounded
    assert resampled_size((12, 16), (24, 33), "mask") is True  # 16.5 rounded down
    with pytest.raises(InputError, match="another aspect ratio"):  # 5x5 is no rounding of 32x24
        resampled_size((5, 5), (24, 32), "mask")
    assert resampled_size((6000, 8000), (3000, 4000), "depth") is True  # larger: sampled down
    with pytest.raises(InputError, match=r"^depth: size 640x500 \(WxH\) does not match the photo's 4000x3000 "
                                         r"\(WxH\) and has another aspect ratio"):
        resampled_size((500, 640), (3000, 4000), "depth")


def _two_planes(tmp_path, H=96, W=128, edge=50):
    """A photo with a colour edge at column ``edge`` and the depth that steps there (2 m | 4 m)."""
    image = np.zeros((H, W, 3), np.float32)
    image[:, :edge] = (0.9, 0.2, 0.1)
    image[:, edge:] = (0.1, 0.3, 0.8)
    depth = np.where(np.arange(W)[None] < edge, 2.0, 4.0) * np.ones((H, 1))
    mask = np.zeros((H, W), bool)
    mask[20:60, 10:40] = True
    io.save_image(tmp_path / "photo.png", image)
    return image, depth, mask


def test_smaller_depth_and_mask_are_brought_to_the_photo_size(tmp_path):
    from engine.images import resize_image

    image, depth, mask = _two_planes(tmp_path)
    small_depth = depth[::4, ::4].astype(np.float32)  # 32x24, as a depth model gives it
    np.save(tmp_path / "small_depth.npy", small_depth)
    io.save_mask(tmp_path / "small_mask.png", mask[::4, ::4])
    photo = load_photo(tmp_path / "photo.png", "planes", depth=tmp_path / "small_depth.npy",
                       mask=tmp_path / "small_mask.png")
    assert photo.depth.shape == photo.mask.shape == (96, 128)
    note = photo.notes["resized"]
    assert "\n" not in note and "128x96" in note and "from 32x24" in note and "nearest" in note
    # masks by nearest: every photo pixel takes its small pixel's value
    assert np.array_equal(photo.mask, np.repeat(np.repeat(mask[::4, ::4], 4, 0), 4, 1))
    # depth guided by the photo's edge: both planes exact up to the edge, where bicubic smears
    assert np.allclose(photo.depth, depth, rtol=1e-3)
    smooth = resize_image(small_depth, (96, 128), clip=False)
    assert np.abs(smooth - depth).max() > 0.3
    assert photo.depth.min() >= 2.0 - 1e-4 and photo.depth.max() <= 4.0 + 1e-4  # never beyond the given depths


def test_depth_of_another_aspect_is_refused_in_one_line(tmp_path):
    image, depth, mask = _two_planes(tmp_path)
    np.save(tmp_path / "square.npy", np.full((32, 32), 2.0, np.float32))
    io.save_mask(tmp_path / "mask.png", mask)
    with pytest.raises(InputError) as err:
        load_photo(tmp_path / "photo.png", "planes", depth=tmp_path / "square.npy", mask=tmp_path / "mask.png")
    message = str(err.value)
    assert "\n" not in message and "square.npy" in message and "another aspect ratio" in message
    # a mask too, and under the caller's own name of the input
    io.save_mask(tmp_path / "wide.png", np.pad(mask, ((0, 0), (0, 40))))
    with pytest.raises(InputError, match=r"^Mask File: mask '.*wide.png': size 168x96 \(WxH\) does not match"):
        load_photo(tmp_path / "photo.png", "planes", mask=tmp_path / "wide.png", labels={"mask": "Mask File"})
