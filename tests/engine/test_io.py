"""engine.io with real files written in tmp_path."""
import numpy as np
import OpenEXR
import pytest
from PIL import Image

from engine.errors import InputError
from engine.io import (atomic_output, load_depth, load_image, load_mask, save_depth_exr,
                       save_image, save_mask)


def exr(path, channels):
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, channels) as f:
        f.write(str(path))


@pytest.fixture
def depth():
    return np.linspace(0.5, 9.0, 6 * 8, dtype=np.float32).reshape(6, 8)


def test_depth_exr_npy_png_round_trips(tmp_path, depth):
    save_depth_exr(tmp_path / "d.exr", depth)
    np.testing.assert_array_equal(load_depth(tmp_path / "d.exr", expected_shape=(6, 8)), depth)
    exr(tmp_path / "half.exr", {"Y": depth.astype(np.float16)})
    np.testing.assert_allclose(load_depth(tmp_path / "half.exr"), depth, rtol=1e-3)
    rgb = np.stack([depth] * 3, -1).astype(np.float16)
    exr(tmp_path / "rgb.exr", {"RGB": rgb})
    np.testing.assert_allclose(load_depth(tmp_path / "rgb.exr"), depth, rtol=1e-3)
    exr(tmp_path / "z.exr", {"Z": depth})
    np.testing.assert_array_equal(load_depth(tmp_path / "z.exr"), depth)
    np.save(tmp_path / "d.npy", depth.astype(np.float64))
    out = load_depth(tmp_path / "d.npy")
    assert out.dtype == np.float32 and out.shape == (6, 8)
    mm = np.round(depth * 1000).astype(np.uint16)
    Image.fromarray(mm).save(tmp_path / "d.png")
    np.testing.assert_allclose(load_depth(tmp_path / "d.png"), mm / 1000.0, rtol=1e-6)  # default mm
    np.testing.assert_allclose(load_depth(tmp_path / "d.png", png_scale=0.01), mm / 100.0, rtol=1e-6)


@pytest.mark.parametrize("bad,message", [(np.nan, "NaN"), (np.inf, "infinite"), (0.0, "zero or negative"),
                                         (-1.0, "zero or negative")])
def test_depth_rejects_invalid_values_naming_the_file(tmp_path, depth, bad, message):
    depth[2, 3] = bad
    save_depth_exr(tmp_path / "bad.exr", depth)
    with pytest.raises(InputError, match=f"bad.exr.*{message}"):
        load_depth(tmp_path / "bad.exr")


def test_depth_rejects_bad_files(tmp_path, depth):
    np.save(tmp_path / "d.npy", depth)
    with pytest.raises(InputError, match="d.npy.*8x6.*expected 4x3"):
        load_depth(tmp_path / "d.npy", expected_shape=(3, 4))
    np.save(tmp_path / "rgb.npy", np.stack([depth] * 3, -1))
    with pytest.raises(InputError, match="single-channel"):
        load_depth(tmp_path / "rgb.npy")
    Image.fromarray((depth * 10).astype(np.uint8)).save(tmp_path / "eight.png")
    with pytest.raises(InputError, match="16-bit"):
        load_depth(tmp_path / "eight.png")
    (tmp_path / "junk.exr").write_bytes(b"not an exr")
    with pytest.raises(InputError, match="junk.exr"):
        load_depth(tmp_path / "junk.exr")
    (tmp_path / "d.tiff").write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported"):
        load_depth(tmp_path / "d.tiff")
    with pytest.raises(InputError, match="not found"):
        load_depth(tmp_path / "missing.exr")
    obj = np.array([{"a": 1}], dtype=object)
    np.save(tmp_path / "pickle.npy", obj, allow_pickle=True)
    with pytest.raises(InputError, match="pickle.npy"):
        load_depth(tmp_path / "pickle.npy")


def test_images(tmp_path):
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    save_image(tmp_path / "a.png", rgb)
    back = load_image(tmp_path / "a.png")
    assert back.shape == (5, 7, 3) and back.dtype == np.float32
    np.testing.assert_allclose(back, rgb, atol=1 / 255)
    Image.fromarray(np.zeros((5, 7, 4), np.uint8)).save(tmp_path / "rgba.png")
    assert load_image(tmp_path / "rgba.png").shape == (5, 7, 3)  # alpha dropped
    Image.fromarray(np.full((5, 7), 255, np.uint8)).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").min() == 1.0
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.png"):
        load_image(tmp_path / "bad.png")
    save_image(tmp_path / "u8.png", (rgb * 255).astype(np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "bad.png", "grey.png", "rgba.png", "u8.png"]


def test_masks_any_layout(tmp_path):
    m = np.zeros((6, 8), bool)
    m[1:4, 2:6] = True
    save_mask(tmp_path / "m.png", m)
    assert np.array_equal(load_mask(tmp_path / "m.png", expected_shape=(6, 8)), m)
    # RGBA cut-out: colour everywhere, the object in alpha.
    rgba = np.full((6, 8, 4), 200, np.uint8)
    rgba[..., 3] = m * 255
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    assert np.array_equal(load_mask(tmp_path / "cut.png"), m)
    # Opaque RGBA (like the scenes): luminance.
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = m[..., None] * 255
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    assert np.array_equal(load_mask(tmp_path / "opaque.png"), m)
    Image.fromarray(m).save(tmp_path / "bits.png")  # mode "1"
    assert np.array_equal(load_mask(tmp_path / "bits.png"), m)
    Image.fromarray((m * 65535).astype(np.uint16)).save(tmp_path / "sixteen.png")
    assert np.array_equal(load_mask(tmp_path / "sixteen.png"), m)
    Image.fromarray(m.astype(np.uint8) * 255).convert("P").save(tmp_path / "pal.png")
    assert np.array_equal(load_mask(tmp_path / "pal.png"), m)
    np.save(tmp_path / "m.npy", m)
    assert np.array_equal(load_mask(tmp_path / "m.npy"), m)


def test_masks_rejected(tmp_path):
    save_image(tmp_path / "empty.png", np.zeros((4, 4, 3)))
    with pytest.raises(InputError, match="empty.png.*empty"):
        load_mask(tmp_path / "empty.png")
    save_image(tmp_path / "full.png", np.ones((4, 4, 3)))
    with pytest.raises(InputError, match="full.png.*whole image"):
        load_mask(tmp_path / "full.png")
    m = np.zeros((4, 4), bool)
    m[1, 1] = True
    save_mask(tmp_path / "m.png", m)
    with pytest.raises(InputError, match="m.png.*expected 5x4"):
        load_mask(tmp_path / "m.png", expected_shape=(4, 5))


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        save_image(target, np.full((3, 3, 3), np.nan))  # invalid data: the old file survives
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_atomic_output_files_get_normal_permissions(tmp_path):
    import os
    import stat

    from engine.io import save_mask

    out = tmp_path / "mask.png"
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    save_mask(out, mask)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
