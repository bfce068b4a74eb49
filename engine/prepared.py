"""A prepared photo: the photo inverted into the model, all an edit needs, and its disk format
(engine.cache writes and checks the files; this module says what they hold). Made by
`engine.pipeline.Engine.prepare`, read by `Engine.edit` and engine.composite."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import cache
from .camera import Camera
from .errors import InputError
from .settings import EditSettings


@dataclass
class Prepared:
    """A photo inverted into the model: all an edit needs (see engine.cache for the disk format)."""

    image: np.ndarray  # (h, w, 3) float32 at the working resolution
    depth: np.ndarray  # (h, w) float32 metres
    object_masks: np.ndarray  # (N, h, w) bool, one per object (engine.lifted: disjoint)
    background_depth: np.ndarray | None  # (h, w) float32: behind the objects (completed at prepare)
    prompt: str
    cond_embedding: object  # torch (1, L, D)
    null_embeddings: object  # torch (steps, L, D)
    noise: object  # torch (1, C, h/f, w/f): the inverted x_T
    latents: object  # torch (1, C, h/f, w/f): the input image's latents x_0
    reconstruction_latents: object  # torch (1, C, h/f, w/f)
    reconstruction: np.ndarray  # (h, w, 3) float32: the unguided reconstruction
    references: dict  # {(step, layer): torch (1, C, gh, gw)}
    settings: EditSettings
    model_id: str
    revision: str
    key: str
    original_size: tuple
    report: dict = field(default_factory=dict)
    # The photo at its own size (engine.composite puts the edit back onto it): uint8 (H, W, 3)
    # and the object mask (H, W) bool, as given to prepare.
    photo: np.ndarray | None = None
    photo_mask: np.ndarray | None = None
    # torch (steps, 1, C, h/f, w/f): the reconstruction's latents after each step (local background)
    trajectory: object = None
    # where `Engine.prepare` found this photo already prepared (its cache_dir), None when it ran
    reused_from: str | None = None
    # the preset named when it was prepared: an edit's default schedule (None: not recorded)
    preset: str | None = None
    # (N, 3) float64: each object's camera-frame centroid from the photo's own depth and masks at
    # full size (engine.transforms.object_centroid), the pivot of "centroid" on every path
    centroids: np.ndarray | None = None
    # the backbone it was inverted on (engine.diffusion.backbones); an edit on another is refused
    backbone: str = "sd2-depth"

    @property
    def size(self) -> tuple:
        return tuple(self.image.shape[:2])

    @property
    def object_mask(self) -> np.ndarray:
        """(h, w) bool: the union of the objects."""
        return self.object_masks.any(0)

    @property
    def scene(self):
        """The lifted scene (engine.lifted), built once per photo on first use."""
        if getattr(self, "_scene", None) is None:
            from .lifted import LiftedScene

            self._scene = LiftedScene.build(self.depth, self.object_masks, self.background_depth, self.camera)
        return self._scene

    @property
    def camera(self) -> Camera:
        return Camera(*self.size)

    def save(self, directory) -> None:
        import torch

        t = {
            "image": torch.from_numpy(np.ascontiguousarray(self.image)),
            "depth": torch.from_numpy(np.ascontiguousarray(self.depth)),
            "object_masks": torch.from_numpy(self.object_masks.astype(np.uint8)),
            "cond_embedding": self.cond_embedding, "null_embeddings": self.null_embeddings,
            "noise": self.noise, "latents": self.latents,
            "reconstruction_latents": self.reconstruction_latents,
            "reconstruction": torch.from_numpy(np.ascontiguousarray(self.reconstruction)),
            "photo": torch.from_numpy(np.ascontiguousarray(self.photo)),
            "photo_mask": torch.from_numpy(self.photo_mask.astype(np.uint8)),
            "trajectory": self.trajectory,
        }
        if self.background_depth is not None:
            t["background_depth"] = torch.from_numpy(np.ascontiguousarray(self.background_depth))
        for (step, layer), a in self.references.items():
            t[f"ref/{step}/{layer}"] = a
        meta = {"key": self.key, "prompt": self.prompt, "model_id": self.model_id,
                "revision": self.revision, "settings": self.settings.to_dict(),
                "original_size": list(self.original_size), "size": list(self.size),
                "report": self.report, "preset": self.preset,
                "centroids": np.asarray(self.centroids, np.float64).tolist(), "backbone": self.backbone}
        cache.save(directory, t, meta)

    @classmethod
    def load(cls, directory, expected_key: str | None = None) -> "Prepared":
        tensors, meta = cache.load(directory, expected_key)
        what = f"prepared cache {str(directory)!r}"
        try:
            from . import checks

            settings = checks.settings_data(meta["settings"], f"{what}: settings")
            refs = {}
            for name, a in tensors.items():
                if name.startswith("ref/"):
                    _, step, layer = name.split("/")
                    refs[(int(step), int(layer))] = a
            expected = {(i, l) for i in range(settings.guided_steps) for l in settings.layers_at(i)}
            if set(refs) != expected:
                raise InputError(f"{what}: reference activations do not match its settings")
            bg = tensors.get("background_depth")
            p = cls(image=tensors["image"].numpy(), depth=tensors["depth"].numpy(),
                    object_masks=tensors["object_masks"].numpy().astype(bool),
                    background_depth=None if bg is None else bg.numpy(), prompt=meta["prompt"],
                    cond_embedding=tensors["cond_embedding"], null_embeddings=tensors["null_embeddings"],
                    noise=tensors["noise"], latents=tensors["latents"],
                    reconstruction_latents=tensors["reconstruction_latents"],
                    reconstruction=tensors["reconstruction"].numpy(), references=refs, settings=settings,
                    model_id=meta["model_id"], revision=meta["revision"], key=meta["key"],
                    original_size=tuple(meta["original_size"]), report=meta.get("report", {}),
                    photo=tensors["photo"].numpy(), photo_mask=tensors["photo_mask"].numpy().astype(bool),
                    trajectory=tensors["trajectory"], preset=meta.get("preset"),
                    centroids=np.asarray(meta["centroids"], np.float64),
                    backbone=meta.get("backbone", "sd2-depth"))
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{what}: incomplete or inconsistent ({exc}); prepare the photo again") from None
        from .diffusion.backbones import BACKBONES

        if p.backbone not in BACKBONES:
            raise InputError(f"{what}: unknown backbone {p.backbone!r}; prepare the photo again")
        h, w = meta["size"]
        if p.image.shape != (h, w, 3) or p.depth.shape != (h, w) or p.object_mask.shape != (h, w) or \
                (p.background_depth is not None and p.background_depth.shape != (h, w)):
            raise InputError(f"{what}: image, depth and mask do not have its recorded size {w}x{h}")
        if p.centroids.shape != (len(p.object_masks), 3) or not np.isfinite(p.centroids).all():
            raise InputError(f"{what}: its object centroids do not match its {len(p.object_masks)} object(s)")
        if p.null_embeddings.shape[0] != settings.steps:
            raise InputError(f"{what}: {p.null_embeddings.shape[0]} null embeddings for {settings.steps} steps")
        return p
