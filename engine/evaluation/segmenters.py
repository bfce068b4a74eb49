"""The object's mask in an (edited) image, behind one small interface.

``Segmenter.segment(image, prompt) -> bool (H, W)``; ``name`` says which one ran. Two kinds:

- :class:`PerceptionSegmenter`: the paper's segmentation (Grounding DINO box from the text query,
  then SAM), through ``engine.perception``; available only where those weights resolve through
  the model registry (nothing is downloaded).
- :class:`ColourSegmenter`: for synthetic scenes with one plain-coloured object. It learns the
  object's colours from the input photo inside the object mask and the scene's colours outside
  it, in CIE Lab with lightness down-weighted (shading and shadows change lightness far more than
  chroma), as a few k-means clusters each; a pixel of another frame is "object" when its nearest
  cluster is an object cluster. A 3x3 majority vote removes render noise, and connected components
  smaller than a fraction of the largest one are dropped (a pillar may split the object in two, so
  not only the largest is kept).

How good a segmenter is on a scene is measured, not assumed: its *ceiling* is the IoU of its mask
on the true edited render (``gt_image_K``) against the true silhouette (``gt_true_K``); the
evaluation also reports its IoU on the model's own reconstruction against the input mask (a
segmenter that cannot find the object in the unedited reconstruction under-rates every edit).
"""
from __future__ import annotations

import numpy as np

from ..errors import EngineError


class SegmenterUnavailable(EngineError):
    """The requested segmenter cannot run here (the message says why)."""


class Segmenter:
    name = "segmenter"

    def segment(self, image: np.ndarray, prompt: str) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# colour

def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (..., 3) -> CIE Lab (D65), (..., 3) float64."""
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps = 216 / 24389
    f = np.where(xyz > eps, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def kmeans(x: np.ndarray, k: int, iters: int = 30, seed: int = 0, restarts: int = 6) -> np.ndarray:
    """k-means (scipy's kmeans2, k-means++ seeding), best of ``restarts`` by inertia;
    deterministic for a seed. Returns the (k', D) centres (empty clusters dropped)."""
    from scipy.cluster.vq import kmeans2

    x = np.asarray(x, np.float64)
    k = max(1, min(k, len(x)))
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        c, lab = kmeans2(x, k, iter=iters, minit="++", missing="warn", seed=rng)
        c = c[np.unique(lab)]
        inertia = np.min(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1).sum()
        if inertia < best_inertia:
            best, best_inertia = c, inertia
    return best


def _binary_erode(mask: np.ndarray, r: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_erosion(mask, iterations=r) if r > 0 else mask


def _binary_dilate(mask: np.ndarray, r: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=r) if r > 0 else mask


def keep_components(mask: np.ndarray, min_fraction: float = 0.25, min_pixels: int = 4) -> np.ndarray:
    """Connected components (8-connected) at least ``min_fraction`` of the largest one."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros_like(mask, bool)
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.nonzero(sizes >= max(min_pixels, min_fraction * sizes.max()))[0] + 1
    return np.isin(labels, keep)


class ColourSegmenter(Segmenter):
    """Nearest colour cluster: object clusters from the reference photo's mask, scene clusters
    from outside it (see the module docstring)."""

    name = "colour"

    def __init__(self, reference_image: np.ndarray, reference_mask: np.ndarray, *,
                 extra_references=(), object_clusters: int = 3, scene_clusters: int = 10,
                 lightness_weight: float = 0.35, min_component_fraction: float = 0.25, seed: int = 0):
        """``extra_references``: more images with the SAME object mask (e.g. the model's own
        reconstruction of the photo, whose colours went through the VAE): their colours join the
        object and scene models, so the model's renderings are not mis-segmented for colours the
        photo never had."""
        m = np.asarray(reference_mask, bool)
        refs = [np.asarray(reference_image, np.float32)] + [np.asarray(r, np.float32) for r in extra_references]
        if any(r.shape[:2] != m.shape for r in refs) or not m.any():
            raise ValueError("colour segmenter: the reference mask must be non-empty and match the images")
        self.lightness_weight = lightness_weight
        self.min_component_fraction = min_component_fraction
        inner = _binary_erode(m, 1)
        if inner.sum() < 8:  # thin objects: keep the edge pixels rather than nothing
            inner = m
        outer = ~_binary_dilate(m, 2)
        feats = [self._features(r) for r in refs]
        self.object_centres = kmeans(np.concatenate([f[inner] for f in feats]), object_clusters, seed=seed)
        self.scene_centres = kmeans(np.concatenate([f[outer] for f in feats]), scene_clusters, seed=seed + 1)

    def _features(self, image: np.ndarray) -> np.ndarray:
        lab = srgb_to_lab(image)
        lab[..., 0] *= self.lightness_weight
        return lab

    def probability_map(self, image: np.ndarray) -> np.ndarray:
        """Signed margin per pixel: > 0 where the nearest cluster is an object cluster."""
        f = self._features(np.asarray(image, np.float32))
        flat = f.reshape(-1, 3)
        d_obj = np.sqrt(((flat[:, None] - self.object_centres[None]) ** 2).sum(-1)).min(1)
        d_bg = np.sqrt(((flat[:, None] - self.scene_centres[None]) ** 2).sum(-1)).min(1)
        return (d_bg - d_obj).reshape(f.shape[:2])

    def segment(self, image: np.ndarray, prompt: str = "") -> np.ndarray:
        from scipy import ndimage

        raw = self.probability_map(image) > 0
        # 3x3 majority vote against isolated noisy pixels
        votes = ndimage.uniform_filter(raw.astype(np.float32), size=3, mode="nearest")
        voted = votes > 0.5
        return keep_components(voted, self.min_component_fraction)


# ---------------------------------------------------------------------------------------------
# perception

class PerceptionSegmenter(Segmenter):
    """Grounding DINO + SAM through ``engine.perception`` (the paper's segmentation).

    Construct with :meth:`create`, which raises :class:`SegmenterUnavailable` (with the reason)
    where the perception code or its weights are absent. Nothing is downloaded.
    """

    name = "perception"

    def __init__(self, select_objects, kwargs: dict):
        self._select = select_objects
        self._kwargs = kwargs

    @classmethod
    def create(cls, models_dir=None, model_overrides=None, device="auto") -> "PerceptionSegmenter":
        try:
            from ..perception import detect
        except ImportError as exc:
            raise SegmenterUnavailable(f"perception segmenter: engine.perception is not importable ({exc})") from None
        from .. import registry

        overrides = dict(model_overrides or {})
        for role in ("detector", "sam"):
            if role not in registry.REGISTRY:
                raise SegmenterUnavailable(f"perception segmenter: no {role!r} role in the model registry")
            try:
                registry.resolve(role, overrides.get(role), models_dir)
            except Exception as exc:  # ModelNotFoundError and friends: say why, fall back
                raise SegmenterUnavailable(f"perception segmenter: {exc}") from None
        kwargs = {"models_dir": models_dir, "overrides": overrides or None, "device": device}
        return cls(detect.select_objects, kwargs)

    def segment(self, image: np.ndarray, prompt: str) -> np.ndarray:
        from ..errors import InputError
        from .scenes import object_query

        try:
            candidates = self._select(image, object_query(prompt), **self._kwargs)
        except InputError:  # nothing found: the object is not recognisable in this frame
            return np.zeros(image.shape[:2], bool)
        if not candidates:
            return np.zeros(image.shape[:2], bool)
        return np.asarray(candidates[0].mask, bool)  # candidates come best first


def make_segmenter(kind: str, reference_image, reference_mask, *, extra_references=(), models_dir=None,
                   model_overrides=None, device="auto") -> tuple[Segmenter, str]:
    """``kind`` is ``auto`` | ``perception`` | ``colour``. Returns (segmenter, note)."""
    if kind not in ("auto", "perception", "colour"):
        raise ValueError(f"unknown segmenter {kind!r}")
    note = ""
    if kind in ("auto", "perception"):
        try:
            return PerceptionSegmenter.create(models_dir, model_overrides, device), "perception (Grounding DINO + SAM)"
        except SegmenterUnavailable as exc:
            if kind == "perception":
                raise
            note = f"; perception unavailable: {exc}"
    extra = " (colours of the photo and of its reconstruction)" if len(extra_references) else ""
    return (ColourSegmenter(reference_image, reference_mask, extra_references=extra_references),
            "colour (nearest Lab cluster" + extra + ")" + note)
