"""Backward warping of multi-channel signals with the inverse flow (paper Eq. 4 and 6).

``warp(signal, source_coords)`` returns, at every output pixel, the signal bilinearly sampled at
that pixel's source coordinates: W[X, F](u) = X(u - F(u)) with u - F(u) = source_coords(u).
Coordinates are continuous pixel units of the SIGNAL's grid, pixel (i, j) centred at
(j + 0.5, i + 0.5) (`engine.camera` conventions), so the source coordinates of a lifted scene's
frame on the signal's grid (`LiftedScene.frame(edit, grid=(h, w))`) plug in directly.
"""
from __future__ import annotations


def warp(signal, source_coords):
    """Sample ``signal`` (B, C, h, w) at ``source_coords`` (h', w', 2) or (B, h', w', 2) -> (B, C, h', w').

    (u, v) = (x, y) in pixel units of the signal grid. Bilinear (grid_sample, align_corners=False);
    between the outermost pixel centres and the image edge the border value is used; NaN
    coordinates (no source) and coordinates outside [0, w] x [0, h] give 0. Differentiable with
    respect to ``signal``; runs on the signal's device and dtype.
    """
    import torch
    import torch.nn.functional as F

    if signal.dim() != 4:
        raise ValueError(f"warp: signal must be (B, C, h, w), got shape {tuple(signal.shape)}")
    coords = torch.as_tensor(source_coords, device=signal.device)
    if coords.dim() == 3:
        coords = coords.unsqueeze(0)
    if coords.dim() != 4 or coords.shape[-1] != 2:
        raise ValueError(f"warp: source_coords must be (h, w, 2) or (B, h, w, 2), got {tuple(coords.shape)}")
    B, _, h, w = signal.shape
    if coords.shape[0] not in (1, B):
        raise ValueError(f"warp: {coords.shape[0]} coordinate maps for a batch of {B}")
    # Normalise in at least fp32 (fp64 for fp64 signals): fp16 coordinates are off by pixels.
    coords = coords.to(torch.float64 if signal.dtype == torch.float64 else torch.float32)
    u, v = coords[..., 0], coords[..., 1]
    ok = torch.isfinite(u) & torch.isfinite(v) & (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
    # align_corners=False: normalised -1 is the left edge of pixel 0, +1 the right edge of the last.
    grid = torch.stack([u / w * 2 - 1, v / h * 2 - 1], dim=-1)
    grid = torch.where(ok.unsqueeze(-1), grid, torch.zeros_like(grid))
    grid = grid.expand(B, -1, -1, -1).to(signal.dtype)
    out = F.grid_sample(signal, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out * ok.expand(B, -1, -1).unsqueeze(1).to(out.dtype)
