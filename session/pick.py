"""Picking one more object of an imported photo by clicks (the add-on's Pick Object tool), bpy-free.

The clicks are SAM's point prompt on the photo at its own size (`engine.perception.segment`,
the code behind ``--point`` / ``--point-out``), encoded once per pick. Accepting adds the mask as
the photo's next object: a pixel already in an object stays there (`engine.checks.disjoint_masks`),
the background is filled again without every object (the model-free fill of several objects)
and the photo's cache is rewritten, so a frame renders the new object like an imported one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import AddonError

MOST_OF_THE_PHOTO = 0.5  # a picked mask above this share of the photo is flagged (`Pick.warning`)


@dataclass
class Pick:
    """One pick in progress on the photo whose cache is ``cache_dir``: the clicked points, photo
    pixels (x the column, y the row from the top) with 1 on the object and 0 outside it, and the
    mask they give (None until a point is on the object)."""

    cache_dir: str
    options: dict
    points: list = field(default_factory=list)  # [(x, y, label)]
    mask: np.ndarray | None = None
    _picker: object = field(default=None, repr=False)
    _inputs: object = field(default=None, repr=False)

    @property
    def inputs(self):
        if self._inputs is None:
            from .photo import load_cache

            self._inputs = load_cache(self.cache_dir)
        return self._inputs

    def start(self):
        """Load SAM and encode the photo (once)."""
        from ..engine.perception.segment import PointPicker

        if self._picker is None:
            o = self.options
            self._picker = PointPicker(self.inputs.image, o.get("models_dir"), o.get("overrides"), o.get("device", "auto"))
        return self

    def add(self, x, y, inside=True):
        self.points.append((float(x), float(y), 1 if inside else 0))
        return self.update()

    def remove_last(self):
        if self.points:
            self.points.pop()
        return self.update()

    def remove_nearest(self, x, y):
        if self.points:
            d = [(px - x) ** 2 + (py - y) ** 2 for px, py, _ in self.points]
            self.points.pop(int(np.argmin(d)))
        return self.update()

    def update(self):
        """The mask of the points now (None without a point on the object)."""
        inside = [(x, y) for x, y, label in self.points if label]
        outside = [(x, y) for x, y, label in self.points if not label]
        self.mask = self.start()._picker.mask(inside, outside, "point", "point outside") if inside else None
        return self.mask

    @property
    def warning(self):
        """One line when the mask covers most of the photo (SAM took the scene, not the object),
        else None."""
        share = 0.0 if self.mask is None else float(self.mask.mean())
        if share <= MOST_OF_THE_PHOTO:
            return None
        return (f"Pick Object: the mask covers {share:.0%} of the photo; Shift+click on what is not the "
                f"object, or click nearer its middle")

    def accept(self):
        """Add the mask as the photo's next object; rewrite the cache. Returns the new inputs."""
        import dataclasses

        from ..engine import checks
        from ..engine.errors import InputError
        from ..engine.inputs import fill_background, photo_folder_info, save_photo_folder

        if self.mask is None:
            raise AddonError("Pick Object: click on the object first (Shift+click marks what is not the object)")
        old = self.inputs
        masks = checks.disjoint_masks(list(old.masks) + [self.mask])
        if not masks[-1].any():
            raise AddonError("Pick Object: the picked pixels all belong to the photo's objects already; "
                             "click on another object")
        if masks.any(0).all():
            raise AddonError("Pick Object: the objects would cover the whole photo; some background must be left")
        photo = fill_background(dataclasses.replace(old, mask=masks), refill=True)
        try:
            info = photo_folder_info(self.cache_dir)
        except InputError as exc:
            raise AddonError(f"Pick Object: {exc}; import the photo again") from exc
        picked = info.get("picked", []) + [[list(p) for p in self.points]]
        save_photo_folder(self.cache_dir, photo, {**info, "picked": picked})
        from .frames import forget

        forget()  # remembered frames and renderers were made from the old cache
        return photo
