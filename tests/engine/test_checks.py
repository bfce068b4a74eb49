"""engine.checks: the one checks module (arrays, text, strict JSON, settings types, frame numbers)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine import checks, io
from engine.errors import InputError


def test_depth_refuses_complex_absurd_and_accepts_metres():
    d = np.full((4, 5), 2.0, np.float32)
    assert checks.depth(d).dtype == np.float32
    for bad, fragment in ((d + 1j, "complex"), (d * 1e-6, "plausible"), (d * 1e9, "plausible"),
                          (np.where(d > 0, np.nan, d), "NaN"), (-d, "negative"), (d[..., None, None], "shape"),
                          (np.array([["a"]]), "numbers")):
        with pytest.raises(InputError, match=fragment):
            checks.depth(bad)


def test_png_depth_in_metres_is_refused_at_the_millimetre_default(tmp_path):
    Image.fromarray(np.full((4, 5), 3, np.uint16)).save(tmp_path / "m.png")
    with pytest.raises(InputError, match="only reach 3, i.e. 3 mm") as refused:
        io.load_depth(tmp_path / "m.png")
    assert "say so with the PNG depth scale" in str(refused.value) and "--" not in str(refused.value)
    with pytest.raises(InputError, match="say so with --png-scale"):  # the caller names its setting
        io.load_depth(tmp_path / "m.png", scale_label="--png-scale")
    with pytest.raises(InputError, match="as .exr or .npy instead"):  # a caller without one
        io.load_depth(tmp_path / "m.png", scale_label="")
    assert np.allclose(io.load_depth(tmp_path / "m.png", png_scale=1.0), 3.0)
    Image.fromarray(np.full((4, 5), 2500, np.uint16)).save(tmp_path / "mm.png")
    assert np.allclose(io.load_depth(tmp_path / "mm.png"), 2.5)


def test_decompression_bomb_is_one_input_error(tmp_path):
    Image.new("1", (10_000, 10_000)).save(tmp_path / "bomb.png")
    with pytest.raises(InputError, match="megapixels"):
        io.load_image(tmp_path / "bomb.png")


def test_text_refuses_undecodable_and_empty():
    assert checks.text("a box") == "a box"
    for bad in ("caf\udce9", "a\x00b", "  ", b"bytes"):
        with pytest.raises(InputError):
            checks.text(bad)


def test_json_is_strict_and_bounded(tmp_path):
    assert checks.json_text('{"a": [1, 2, {"b": "[[["}]}', "x") == {"a": [1, 2, {"b": "[[["}]}
    for bad, fragment in (("[" * 100 + "]" * 100, "nested"), ('{"a": NaN}', "NaN"), ("{", "not valid JSON")):
        with pytest.raises(InputError, match=fragment):
            checks.json_text(bad, "x")
    (tmp_path / "l.json").write_bytes('{"a": "\xe9"}'.encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        checks.json_file(tmp_path / "l.json", "x")
    (tmp_path / "b.json").write_text('{"frames": [{"translation": [false, 0, 0]}]}')
    with pytest.raises(InputError, match="false"):
        checks.transforms_json(tmp_path / "b.json")


@pytest.mark.parametrize("data, fragment", [
    ({"steps": "10"}, "wrong type"), ({"steps": True}, "wrong type"), ({"cfg_scale": False}, "wrong type"),
    ({"resolution": 7.5}, "wrong type"), ({"guided_layers": [2, "3"]}, "wrong type"),
    ({"layer_cycle": [[3], [True]]}, "wrong type"), ({"nope": 1}, "unknown"), ([], "JSON object"),
    ({"steps": 0}, "steps"), ({"inversion": "magic"}, "inversion"),
])
def test_settings_types_and_ranges(data, fragment):
    with pytest.raises(InputError, match=fragment):
        checks.settings_data(data)


def test_settings_accept_ints_for_floats_and_lists_for_tuples():
    s = checks.settings_data({"cfg_scale": 7, "layer_cycle": [[3], [2]], "resolution": None})
    assert s.cfg_scale == 7 and s.layer_cycle == ((3,), (2,))


def test_frame_numbers():
    assert checks.frame_numbers([None, 5, None]) == [1, 5, 3]
    for bad, fragment in (([1, 1], "both key frame 1"), ([2_000_000_000], "outside"), ([-1], "outside"),
                          ([True], "integer"), ([0, 200_000], "span")):
        with pytest.raises(InputError, match=fragment):
            checks.frame_numbers(bad)


def test_disjoint_masks_first_mask_wins_and_names_an_emptied_object():
    a = np.zeros((6, 8), bool)
    a[1:4, 1:5] = True
    b = np.zeros((6, 8), bool)
    b[2:5, 3:7] = True
    out = checks.disjoint_masks([a, b])
    assert out.shape == (2, 6, 8) and (out[0] == a).all() and (out[1] == (b & ~a)).all()
    assert not (out[0] & out[1]).any() and (out.any(0) == (a | b)).all()
    assert checks.disjoint_masks(a).shape == (1, 6, 8)
    with pytest.raises(InputError, match=r"mask 2: empty \(or entirely inside an earlier mask\)"):
        checks.disjoint_masks([a, a & b])
    with pytest.raises(InputError, match=r"object 1: empty"):
        checks.disjoint_masks([np.zeros((6, 8), bool)], what="object")
    with pytest.raises(InputError, match="shape"):
        checks.disjoint_masks(np.zeros(5, bool))
