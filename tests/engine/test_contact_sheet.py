"""engine.contact_sheet: images in a grid, each tile the image's own bytes (upscaled by whole
pixels), written atomically."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.contact_sheet import contact_sheet
from engine.images import to_uint8


def test_tiles_hold_the_images_bytes_at_their_places(tmp_path):
    rng = np.random.default_rng(0)
    a, b, c = (rng.random((6, 9, 3), dtype=np.float32) for _ in range(3))
    gap, scale = 3, 2
    sheet = contact_sheet([("", [a, b]), ("", [c, None])], scale=scale, path=tmp_path / "s.png", gap=gap, margin=0)
    px = np.asarray(sheet)
    th, tw = 6 * scale, 9 * scale
    assert px.shape == (2 * th + gap, 2 * tw + gap, 3)

    def tile(r, k):
        return px[r * (th + gap):r * (th + gap) + th, k * (tw + gap):k * (tw + gap) + tw]

    for (r, k), im in {(0, 0): a, (0, 1): b, (1, 0): c}.items():
        assert np.array_equal(tile(r, k), to_uint8(im).repeat(scale, 0).repeat(scale, 1))
    assert (tile(1, 1) == 128).all()  # no image: grey
    assert (px[th:th + gap] == 255).all()  # white between rows
    assert np.array_equal(np.asarray(Image.open(tmp_path / "s.png").convert("RGB")), px)  # the file is the sheet


def test_labels_and_header_add_room_and_nothing_is_written_for_no_rows(tmp_path):
    img = np.zeros((4, 4, 3), np.float32)
    plain = contact_sheet([("", [img])], gap=1)
    labelled = contact_sheet([("row", [img])], columns=("col",), gap=1)
    assert labelled.size[0] > plain.size[0] and labelled.size[1] > plain.size[1]
    with pytest.raises(ValueError, match="no rows"):
        contact_sheet([], path=tmp_path / "none.png")
    assert not list(tmp_path.iterdir())
