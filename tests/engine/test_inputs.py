"""engine.inputs: the one input boundary (files -> checked PhotoInputs, no model)."""
from __future__ import annotations

import numpy as np
import pytest

from engine import io
from engine.errors import InputError
from engine.inputs import check_visible, complete, load_photo


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
    with pytest.raises(InputError, match="every one"):
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
