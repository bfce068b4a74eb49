"""The camera model: the ONE place the project's image/camera conventions live (docs/design.md section 3).

Frame:   Blender's camera frame. Camera at the origin, +X right, +Y up, looking down -Z;
         a visible point has z < 0.
FOV:     55 degrees across the LARGER image side; square pixels; principal point at the centre.
Pixels:  pixel (row i, column j) has its centre at continuous image coordinates
         (u, v) = (j + 0.5, i + 0.5); row 0 is the TOP of the image, u grows right, v grows down.
Depth:   z-depth in metres, positive: depth = -z.

All functions take numpy arrays or torch tensors (anything with the array API used below) and
keep leading batch dimensions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_FOV_DEG = 55.0


@dataclass(frozen=True)
class Camera:
    """Pinhole camera for an image of ``height`` x ``width`` pixels (any aspect ratio)."""

    height: int
    width: int
    fov_deg: float = DEFAULT_FOV_DEG

    @property
    def focal(self) -> float:
        """Focal length in pixels (the same for both axes)."""
        return (max(self.width, self.height) / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)

    @property
    def centre(self) -> tuple[float, float]:
        """Principal point (u, v) in continuous pixel coordinates."""
        return self.width / 2.0, self.height / 2.0

    def pixel_centres(self):
        """(u, v) coordinates of every pixel centre, each of shape (H, W), float64 numpy."""
        import numpy as np

        v, u = np.meshgrid(np.arange(self.height) + 0.5, np.arange(self.width) + 0.5, indexing="ij")
        return u, v

    def lift(self, depth, u=None, v=None):
        """Z-depth (..., H, W) -> camera-frame points (..., H, W, 3).

        ``u``, ``v`` default to the pixel centres; pass other coordinates to lift arbitrary samples.
        """
        import numpy as np

        if u is None or v is None:
            u, v = self.pixel_centres()
            if not isinstance(depth, np.ndarray):  # torch tensor
                import torch

                u = torch.as_tensor(u, dtype=depth.dtype, device=depth.device)
                v = torch.as_tensor(v, dtype=depth.dtype, device=depth.device)
        cu, cv = self.centre
        f = self.focal
        x = (u - cu) / f * depth
        y = -(v - cv) / f * depth
        z = -depth
        if isinstance(depth, np.ndarray):
            return np.stack([x, y, z], axis=-1)
        import torch

        return torch.stack([x, y, z], dim=-1)

    def project(self, points):
        """Camera-frame points (..., 3) -> (u, v, depth), each (...).

        Points with depth <= 0 (at or behind the camera) get u = v = NaN so callers drop them
        instead of clamping them to the border.
        """
        import numpy as np

        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        depth = -z
        cu, cv = self.centre
        f = self.focal
        if isinstance(points, np.ndarray):
            with np.errstate(divide="ignore", invalid="ignore"):
                safe = np.where(depth > 0, depth, np.nan)
                u = cu + f * x / safe
                v = cv - f * y / safe
            return u, v, depth
        import torch

        safe = torch.where(depth > 0, depth, torch.full_like(depth, float("nan")))
        return cu + f * x / safe, cv - f * y / safe, depth
