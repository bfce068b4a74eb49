"""Image and mask metrics. Images are float arrays in [0, 1], (H, W, 3); masks are bool (H, W).

- ``iou``: intersection over union (1.0 when both masks are empty).
- ``l1``: mean absolute difference over pixels and channels, optionally inside a mask
  (the paper's E_id^L1 is this between the input and the cycled image).
- ``psnr``: 10 log10(1 / MSE) in dB over pixels and channels, optionally inside a mask;
  ``inf`` for identical images.
- ``flicker``: for consecutive frames of one move, mean |(f_k - f_{k-1}) - (g_k - g_{k-1})| over
  pixels and channels (f: the method's frames, g: the true renders): how much more (or other)
  the result changes from frame to frame than the truth does. 0 when the method's change between
  two frames is exactly the true change, whatever each frame's own error.
- ``lpips``: only where the ``lpips`` package and its backbone weights are already on disk
  (nothing is ever downloaded); otherwise ``None`` with :func:`lpips_status` saying why.
"""
from __future__ import annotations

import math

import numpy as np


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    _check(a, b)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def _masked_diff(a, b, mask):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    _check(a, b)
    d = a - b
    if mask is None:
        return d.reshape(-1)
    mask = np.asarray(mask, bool)
    if mask.shape != a.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {a.shape[:2]}")
    return d[mask].reshape(-1)


def l1(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    d = _masked_diff(a, b, mask)
    if d.size == 0:
        return None
    return float(np.abs(d).mean())


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    d = _masked_diff(a, b, mask)
    if d.size == 0:
        return None
    mse = float((d * d).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(1.0 / mse)


def flicker(frame: np.ndarray, previous: np.ndarray, truth: np.ndarray, previous_truth: np.ndarray) -> float:
    """mean |(frame - previous) - (truth - previous_truth)| over pixels and channels."""
    f, fp, g, gp = (np.asarray(x, np.float64) for x in (frame, previous, truth, previous_truth))
    for x in (fp, g, gp):
        _check(f, x)
    return float(np.abs((f - fp) - (g - gp)).mean())


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """(row, column) of the mask's centre of mass in pixel-centre coordinates, None when empty."""
    ys, xs = np.nonzero(np.asarray(mask, bool))
    if ys.size == 0:
        return None
    return float(ys.mean() + 0.5), float(xs.mean() + 0.5)


def centroid_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Distance in pixels between the centres of mass of two masks (None if either is empty)."""
    ca, cb = centroid(a), centroid(b)
    if ca is None or cb is None:
        return None
    return float(math.hypot(ca[0] - cb[0], ca[1] - cb[1]))


# ---------------------------------------------------------------------------------------------
# LPIPS, only where everything it needs is already on disk.

_LPIPS = None
_LPIPS_REASON: str | None = None


def lpips_status() -> tuple[bool, str]:
    """(available, reason). Never downloads: looks for the ``lpips`` package and the AlexNet
    backbone in torch hub's checkpoint folder."""
    global _LPIPS, _LPIPS_REASON
    if _LPIPS is not None:
        return True, "lpips (alex)"
    if _LPIPS_REASON is not None:
        return False, _LPIPS_REASON
    try:
        import lpips as lpips_pkg  # noqa: F401
    except ImportError:
        _LPIPS_REASON = "the lpips package is not installed"
        return False, _LPIPS_REASON
    import os

    import torch

    ckpt_dir = os.path.join(torch.hub.get_dir(), "checkpoints")
    have = os.path.isdir(ckpt_dir) and any(n.startswith("alexnet") for n in os.listdir(ckpt_dir))
    if not have:
        _LPIPS_REASON = f"AlexNet weights for LPIPS are not in {ckpt_dir} (never downloaded here)"
        return False, _LPIPS_REASON
    try:
        _LPIPS = lpips_pkg.LPIPS(net="alex", verbose=False).eval()
    except Exception as exc:  # a broken install must not stop the evaluation
        _LPIPS_REASON = f"LPIPS failed to load: {exc}"
        return False, _LPIPS_REASON
    return True, "lpips (alex)"


def lpips(a: np.ndarray, b: np.ndarray) -> float | None:
    ok, _ = lpips_status()
    if not ok:
        return None
    import torch

    def t(x):
        return torch.from_numpy(np.asarray(x, np.float32)).permute(2, 0, 1)[None] * 2 - 1

    with torch.no_grad():
        return float(_LPIPS(t(a), t(b)).item())
