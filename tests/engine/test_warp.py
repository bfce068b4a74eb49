"""engine.warp: bilinear backward warps in pixel units."""
import numpy as np
import pytest
import torch

from engine.warp import warp


def centres(h, w):
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return torch.stack([u, v], -1)


def test_identity_and_integer_shift():
    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(warp(x, centres(5, 7)), x, atol=1e-6)
    c = centres(5, 7)
    c[..., 0] -= 2  # each pixel reads from two columns to its left
    out = warp(x, c)
    assert torch.allclose(out[..., 2:], x[..., :-2], atol=1e-6)
    assert (out[..., :2] == 0).all()  # source outside the image: zero, not clamped


def test_bilinear_halfway_and_nan():
    x = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]]])
    c = torch.tensor([[[1.0, 1.0], [float("nan"), 0.5]]])  # (1, 2, 2): centre of the 4; NaN
    out = warp(x, c)
    assert out[0, 0, 0, 0].item() == pytest.approx(3.0)
    assert out[0, 0, 0, 1].item() == 0.0


def test_batched_coords_dtype_and_gradient():
    x = torch.rand(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    c = torch.stack([centres(6, 6), centres(6, 6) + 0.25])
    out = warp(x, c)
    assert out.shape == (2, 4, 6, 6) and out.dtype == torch.float64
    assert torch.allclose(out[0], x[0])
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        warp(x, torch.zeros(3, 6, 6, 2))


def test_numpy_coords_from_geometry_grid():
    x = torch.arange(12.0).reshape(1, 1, 3, 4) + 1
    c = np.full((3, 4, 2), np.nan, dtype=np.float32)
    c[1, 2] = [0.5, 0.5]
    out = warp(x, c)
    assert out[0, 0, 1, 2].item() == pytest.approx(x[0, 0, 0, 0].item(), abs=1e-5)
    assert out.sum().item() == pytest.approx(out[0, 0, 1, 2].item())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.rand(1, 8, 16, 16)
    c = centres(16, 16) + torch.rand(16, 16, 2) - 0.5
    cpu = warp(x, c)
    gpu = warp(x.cuda().half(), c.cuda())
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float16
    assert torch.allclose(gpu.float().cpu(), cpu, atol=1e-2)
