"""Photos as they come: every image input (photo, mask, background, 16-bit PNG depth) read
upright by its EXIF orientation, and each image mode converted by one documented rule
(docs/guarantees.md, "Image files"). The images are written here with Pillow."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine import io
from engine.cli import main
from engine.errors import InputError

ROTATE_90_CW = 6  # EXIF orientation: the viewer turns the stored pixels 90 degrees clockwise


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _quadrants(h=24, w=32):
    """uint8 (h, w, 3): four flat colours, so a turn is visible despite JPEG's losses."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = (230, 30, 30)
    a[: h // 2, w // 2:] = (30, 230, 30)
    a[h // 2:, : w // 2] = (30, 30, 230)
    a[h // 2:, w // 2:] = (230, 230, 30)
    return a


def test_phone_jpeg_with_exif_orientation_is_read_upright(tmp_path):
    stored = _quadrants()
    Image.fromarray(stored).save(tmp_path / "phone.jpg", quality=95, exif=_exif(ROTATE_90_CW))
    img = io.load_image(tmp_path / "phone.jpg")
    upright = np.rot90(stored, k=-1)  # what the phone's viewer shows
    assert img.shape == (32, 24, 3)
    assert np.abs(img * 255 - upright).mean() < 6
    assert io.exif_orientation(tmp_path / "phone.jpg") == ROTATE_90_CW


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_same_upright_picture(tmp_path, orientation):
    upright = _quadrants()
    # store the pixels so that applying ``orientation`` gives ``upright`` back
    stored = {1: upright, 2: upright[:, ::-1], 3: upright[::-1, ::-1], 4: upright[::-1],
              5: upright.transpose(1, 0, 2), 6: np.rot90(upright, k=1), 7: upright[::-1, ::-1].transpose(1, 0, 2),
              8: np.rot90(upright, k=-1)}[orientation]
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "p.png", exif=_exif(orientation))
    assert np.array_equal((io.load_image(tmp_path / "p.png") * 255 + 0.5).astype(np.uint8), upright)


def test_mask_and_png_depth_follow_their_own_exif_orientation(tmp_path):
    mask = np.zeros((6, 8), bool)
    mask[1:3, 1:6] = True  # upright (6 rows, 8 columns)
    Image.fromarray(np.rot90(mask, k=1).astype(np.uint8) * 255).save(tmp_path / "m.png", exif=_exif(ROTATE_90_CW))
    assert np.array_equal(io.load_mask(tmp_path / "m.png"), mask)
    depth_mm = (1000 + np.arange(48).reshape(6, 8) * 10).astype(np.uint16)
    Image.fromarray(np.ascontiguousarray(np.rot90(depth_mm, k=1))).save(tmp_path / "d.png", exif=_exif(ROTATE_90_CW))
    assert np.allclose(io.load_depth(tmp_path / "d.png"), depth_mm * 0.001)


def test_bad_exif_orientation_is_refused_in_one_line(tmp_path, capsys):
    Image.fromarray(_quadrants()).save(tmp_path / "odd.jpg", exif=_exif(9))
    with pytest.raises(InputError, match=r"odd\.jpg.*EXIF orientation 9") as exc:
        io.load_image(tmp_path / "odd.jpg")
    assert "\n" not in str(exc.value)
    mask = np.zeros((24, 32), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    np.save(tmp_path / "depth.npy", np.full((24, 32), 2.0, np.float32))
    (tmp_path / "t.json").write_text(json.dumps({"frames": [{"translation": [0.1, 0, 0]}]}))
    rc = main(["preview", "--image", str(tmp_path / "odd.jpg"), "--depth", str(tmp_path / "depth.npy"),
               "--mask", str(tmp_path / "mask.png"), "--transforms", str(tmp_path / "t.json"),
               "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "odd.jpg" in err, err
    assert not (tmp_path / "never").exists()


def test_sideways_phone_photo_edits_with_inputs_drawn_on_the_upright_view(tmp_path, capsys):
    # the photo as a phone stores it (sideways, orientation 6); mask and depth made on the upright view
    h, w = 30, 40
    upright = np.full((h, w, 3), 120, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[8:20, 10:24] = True
    upright[mask] = (20, 60, 220)
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1))).save(tmp_path / "phone.jpg", quality=95,
                                                                       exif=_exif(ROTATE_90_CW))
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    np.save(tmp_path / "depth.npy", np.where(mask, 1.5, 3.0).astype(np.float32))
    (tmp_path / "t.json").write_text(json.dumps({"frames": [{"translation": [0.1, 0, 0]}]}))
    out = tmp_path / "out"
    assert main(["-q", "preview", "--image", str(tmp_path / "phone.jpg"), "--depth", str(tmp_path / "depth.npy"),
                 "--mask", str(tmp_path / "mask.png"), "--transforms", str(tmp_path / "t.json"),
                 "--out", str(out)]) == 0
    frame = io.load_image(out / "preview_0001.png")
    assert frame.shape == (h, w, 3)
    assert np.abs(frame[~mask] * 255 - 120).mean() < 30  # the background where the upright photo has it

    # a mask drawn on the sideways pixels is the wrong size for the upright photo: one line, exit 2
    Image.fromarray(np.rot90(mask, k=1).astype(np.uint8) * 255).save(tmp_path / "sideways_mask.png")
    capsys.readouterr()
    assert main(["preview", "--image", str(tmp_path / "phone.jpg"), "--depth", str(tmp_path / "depth.npy"),
                 "--mask", str(tmp_path / "sideways_mask.png"), "--transforms", str(tmp_path / "t.json"),
                 "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sideways_mask.png" in err and "upright" in err, err
    assert not (tmp_path / "never").exists()


# --- image modes of the photo ------------------------------------------------------------------
def test_sixteen_bit_grey_photo_uses_its_full_scale(tmp_path):
    grey = (np.arange(20).reshape(4, 5) * 3000).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    img = io.load_image(tmp_path / "g16.png")
    assert img.shape == (4, 5, 3) and img.dtype == np.float32
    assert np.allclose(img[..., 0], grey / 65535.0, atol=1e-6) and np.array_equal(img[..., 0], img[..., 2])


def test_greyscale_and_bilevel_photos_are_expanded_to_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "g.png")
    img = io.load_image(tmp_path / "g.png")
    assert img.shape == (3, 4, 3) and np.allclose(img, (grey / 255.0)[..., None], atol=1e-6)
    Image.fromarray(grey > 100).convert("1").save(tmp_path / "b.png")
    assert np.array_equal(io.load_image(tmp_path / "b.png")[..., 1], (grey > 100).astype(np.float32))


def test_palette_photo_gets_its_colours_and_transparency_over_white(tmp_path):
    rgb = _quadrants(4, 4)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    assert np.array_equal((io.load_image(tmp_path / "p.png") * 255 + 0.5).astype(np.uint8), rgb)
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.save(tmp_path / "t.png", transparency=0)  # palette entry 0 is transparent
    img = io.load_image(tmp_path / "t.png")
    assert np.allclose(img[0, 0], 1.0) and np.allclose(img[0, 1] * 255, [200, 100, 50])


def test_transparent_photo_is_composited_over_white_and_opaque_alpha_dropped(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (100, 0, 200)
    rgba[..., 3] = [[255, 0], [128, 255]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = io.load_image(tmp_path / "a.png") * 255
    a = 128 / 255
    assert np.allclose(img[0, 0], [100, 0, 200], atol=1e-3) and np.allclose(img[0, 1], 255, atol=1e-3)
    assert np.allclose(img[1, 0], [100 * a + 255 * (1 - a), 255 * (1 - a), 200 * a + 255 * (1 - a)], atol=1e-3)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    assert np.allclose(io.load_image(tmp_path / "o.png") * 255, [100, 0, 200], atol=1e-3)
    la = np.stack([np.full((2, 2), 50, np.uint8), np.array([[255, 0], [255, 255]], np.uint8)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    img = io.load_image(tmp_path / "la.png") * 255
    assert np.allclose(img[0, 0], 50, atol=1e-3) and np.allclose(img[0, 1], 255, atol=1e-3)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    cmyk.save(tmp_path / "c.jpg", quality=100)
    img = io.load_image(tmp_path / "c.jpg")
    assert img.shape == (8, 8, 3) and np.allclose(img.mean((0, 1)), [1, 0, 0], atol=0.05)


# --- masks as other tools write them -------------------------------------------------------------
def test_grey_mask_threshold_is_half_scale(tmp_path):
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "m.png")
    assert io.load_mask(tmp_path / "m.png").tolist() == [[False, False, True, True]]
    g16 = np.array([[0, 32767, 32768, 65535]], np.uint16)
    Image.fromarray(g16).save(tmp_path / "m16.png")
    assert io.load_mask(tmp_path / "m16.png").tolist() == [[False, False, True, True]]


def test_soft_edged_mask_is_thresholded_at_half(tmp_path):
    yy, xx = np.mgrid[0:20, 0:20]
    soft = np.clip(255 * (6 - np.hypot(yy - 10, xx - 10)) / 3 + 128, 0, 255).astype(np.uint8)
    Image.fromarray(soft).save(tmp_path / "soft.png")
    assert np.array_equal(io.load_mask(tmp_path / "soft.png"), soft >= 128)


def test_mask_in_the_alpha_channel(tmp_path):
    alpha = np.zeros((6, 6), np.uint8)
    alpha[1:4, 2:5] = 255
    alpha[0, 0] = 140  # a soft edge pixel: in
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., :3] = 255  # constant colour: the mask is the alpha
    rgba[..., 3] = alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    assert np.array_equal(io.load_mask(tmp_path / "alpha.png"), alpha >= 128)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 255, (6, 6, 3))  # a cut-out of the photo
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    assert np.array_equal(io.load_mask(tmp_path / "cutout.png"), alpha >= 128)


def test_palette_and_colour_masks_use_their_luminance(tmp_path):
    m = np.zeros((5, 5), bool)
    m[1:4, 1:3] = True
    rgb = np.where(m[..., None], np.uint8(255), np.uint8(0)).repeat(3, -1).astype(np.uint8)
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert np.array_equal(io.load_mask(tmp_path / "p.png"), m)
    rgb[m] = (255, 0, 0)  # a red mask: luminance 0.21 < half
    Image.fromarray(rgb).save(tmp_path / "red.png")
    with pytest.raises(InputError, match="empty"):
        io.load_mask(tmp_path / "red.png")


def test_float_tiff_is_clipped_to_the_unit_range(tmp_path):
    values = np.array([[-0.5, 0.25], [0.75, 3.0]], np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    img = io.load_image(tmp_path / "f.tif")
    assert np.allclose(img[..., 0], [[0.0, 0.25], [0.75, 1.0]])
    assert io.load_mask(tmp_path / "f.tif").tolist() == [[False, False], [True, True]]
