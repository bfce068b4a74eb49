"""Laplace fill and Poisson (gradient-domain) compositing on the pixel grid, with scipy.sparse.

All solvers use the 4-neighbour graph of the (H, W) grid. Unknowns are the pixels of ``region``;
every other pixel is a Dirichlet boundary value; the image border is a natural (Neumann)
boundary: a missing neighbour simply contributes no equation term. The discrete problem is

    minimise  sum over grid edges (p, q) touching the region of  (f_q - f_p - g_pq)^2

with g the guidance field (desired differences), whose normal equations are the 5-point Poisson
equation. g = 0 gives the Laplace (harmonic) fill. Each connected part of the region must touch
at least one pixel outside it, or its values are undetermined (we raise ValueError).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def solve_poisson(values, region, gx=None, gy=None) -> np.ndarray:
    """Solve for ``values`` inside ``region`` given guidance differences; return a new float64 map.

    values: (H, W) or (H, W, C) boundary values outside ``region`` (inside it they are ignored);
        channels share one system (one factorisation / one Krylov setup).
    region: (H, W) bool, the unknown pixels.
    gx: (H, W-1[, C]) desired f[:, j+1] - f[:, j];  gy: (H-1, W[, C]) desired f[i+1, :] - f[i, :].
        None means zero (Laplace).
    """
    f = np.array(values, dtype=np.float64)
    region = np.asarray(region, dtype=bool)
    H, W = region.shape
    if f.shape[:2] != (H, W) or f.ndim not in (2, 3):
        raise ValueError(f"values {f.shape} and region {region.shape} differ")
    squeeze = f.ndim == 2
    if squeeze:
        f = f[..., None]
    C = f.shape[2]
    n = int(region.sum())
    if n == 0:
        return f[..., 0] if squeeze else f
    if n == H * W:
        raise ValueError("the region covers the whole grid: no boundary values to solve from")
    gx = np.zeros((H, W - 1, C)) if gx is None else np.asarray(gx, dtype=np.float64).reshape(H, W - 1, -1)
    gy = np.zeros((H - 1, W, C)) if gy is None else np.asarray(gy, dtype=np.float64).reshape(H - 1, W, -1)
    gx = np.broadcast_to(gx, (H, W - 1, C))
    gy = np.broadcast_to(gy, (H - 1, W, C))

    index = np.full((H, W), -1, dtype=np.int64)
    index[region] = np.arange(n)
    diag = np.zeros(n)
    rhs = np.zeros((n, C))
    rows, cols = [], []

    # Each edge (p, q) with desired f_q - f_p = g adds, to p's equation, f_p - f_q = -g and, to
    # q's equation, f_q - f_p = +g (the normal equations of the least-squares problem above).
    edges = (
        (index[:, :-1], index[:, 1:], f[:, :-1], f[:, 1:], gx),  # p = (i, j), q = (i, j+1)
        (index[:-1, :], index[1:, :], f[:-1, :], f[1:, :], gy),  # p = (i, j), q = (i+1, j)
    )
    for ia, ib, fa, fb, g in edges:
        for p, q, fq, sign in ((ia, ib, fb, -1.0), (ib, ia, fa, 1.0)):
            sel = p >= 0
            pi, qi = p[sel], q[sel]
            inner = qi >= 0
            diag += np.bincount(pi, minlength=n)
            for c in range(C):
                rhs[:, c] += np.bincount(pi, weights=sign * g[..., c][sel], minlength=n)
                rhs[:, c] += np.bincount(pi[~inner], weights=fq[..., c][sel][~inner], minlength=n)
            rows.append(pi[inner])
            cols.append(qi[inner])
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    A = sp.csr_matrix((np.full(rows.size, -1.0), (rows, cols)), shape=(n, n)) + sp.diags(diag)
    _check_anchored(A, diag, rows, n)
    # One sparse LU factorisation serves every channel.
    x = spla.spsolve(A.tocsc(), rhs, permc_spec="MMD_AT_PLUS_A").reshape(n, C)
    f[region] = x
    return f[..., 0] if squeeze else f


def _check_anchored(A, diag, rows, n):
    # A component is anchored when some pixel has fewer region-neighbours than graph-neighbours
    # (i.e. touches a Dirichlet pixel). Without an anchor the system is singular.
    inner_deg = np.bincount(rows, minlength=n)
    anchored = inner_deg < diag
    if anchored.all():
        return
    ncomp, labels = sp.csgraph.connected_components(A, directed=False)
    if ncomp and not np.all(np.bincount(labels, weights=anchored.astype(float), minlength=ncomp) > 0):
        raise ValueError("a part of the region touches no pixel outside it: its values are undetermined")


def laplace_fill(values, region) -> np.ndarray:
    """Harmonic interpolation of ``values`` (H, W) or (H, W, C) into ``region`` (values outside
    are the boundary)."""
    return solve_poisson(values, region)


def poisson_blend(source, target, region) -> np.ndarray:
    """Classic Poisson image editing (Perez et al. 2003): paste ``source``'s gradients into
    ``target`` inside ``region`` so that the result meets ``target`` seamlessly at the region
    boundary. Guidance on every edge touching the region is the source difference."""
    s = np.asarray(source, dtype=np.float64)
    return solve_poisson(target, region, np.diff(s, axis=1), np.diff(s, axis=0))

