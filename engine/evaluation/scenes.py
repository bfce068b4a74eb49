"""Scene folders with ground truth (Blender renders; copies in tests/data, format below).

``scene_XXX/`` holds ``image.png``, ``depth.npy`` (or ``depth.exr``), ``mask.png``, ``prompt.txt``,
``transforms.json`` (any transform file `engine.transforms` reads: ``{"frames": [{"matrix": 4x4}]}``
for one object, ``{"objects": [{"matrix": T1}, ...]}`` for several, ``{"camera": M}`` for camera
moves) and, per frame K (1-based, 4 digits), ``gt_image_K.png``, ``gt_true_K.png`` and
``gt_lifted_K.png``. Scenes with several objects have ``mask_N.png`` (N = 1, 2, ...; ``mask.png``
is their union) and per-object ground truth ``gt_true_K_N.png`` / ``gt_lifted_K_N.png``. In camera
scenes ``gt_lifted_K`` is the coverage of the new view. Ground-truth files are optional: a metric
whose ground truth is missing is reported as absent, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inputs import load_photo
from ..io import load_image, load_mask  # ground truth: the engine's one image and mask rule


@dataclass
class Frame:
    index: int  # 1-based, as in the file names
    transform: object  # engine.transforms.FrameEdit (np.asarray gives the matrix of a one-object edit)
    gt_image: np.ndarray | None = None  # (H, W, 3) float32 in [0, 1]
    gt_true: np.ndarray | None = None  # (H, W) bool: silhouette of the true moved object(s)
    gt_lifted: np.ndarray | None = None  # (H, W) bool: lifted visible surface moved by T (camera: coverage)
    gt_true_objects: list | None = None  # per object (H, W) bool, several-object scenes only
    gt_lifted_objects: list | None = None

    @property
    def tag(self) -> str:
        return f"{self.index:04d}"


@dataclass
class Scene:
    name: str
    path: Path
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    depth: np.ndarray  # (H, W) float32 z-depth in metres
    mask: np.ndarray  # (H, W) bool: the union of the objects
    prompt: str
    frames: list[Frame] = field(default_factory=list)
    masks: np.ndarray | None = None  # (N, H, W) bool, one per object (N = 1: mask[None])

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]


def _depth_file(folder: Path) -> Path:
    for name in ("depth.npy", "depth.exr"):
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"scene {str(folder)!r}: no depth.npy or depth.exr")


def _read_transforms(path: Path, centroids) -> list:
    from ..transforms import load_transforms

    return load_transforms(path, centroid=centroids)


def is_scene(path: Path) -> bool:
    return path.is_dir() and (path / "image.png").is_file() and (path / "transforms.json").is_file()


def find_scenes(root: str | Path) -> list[Path]:
    """Scene folders under ``root`` (``root`` itself when it is one), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"scenes {str(root)!r}: not a directory")
    if is_scene(root):
        return [root]
    found = sorted(p for p in root.iterdir() if is_scene(p))
    if not found:
        raise InputError(f"scenes {str(root)!r}: no scene folders (with image.png and transforms.json) found")
    return found


# How a scene folder's files are named in messages (engine.inputs.load_photo's labels).
SCENE_LABELS = {"image": "scene image", "prompt": "scene prompt.txt", "depth": "scene depth", "mask": "scene mask"}


def load_scene(path: str | Path) -> Scene:
    from ..transforms import object_centroid

    path = Path(path)
    prompt_file = path / "prompt.txt"
    # an empty prompt.txt is an empty prompt, as a missing one is (the caption is optional here)
    lines = prompt_file.read_text().strip().splitlines() if prompt_file.is_file() else []
    prompt = lines[0].strip() if lines else ""
    # The photo's inputs cross the engine's one input boundary, as every front end's do (checks,
    # sizes, several masks made disjoint); only the ground truth is this format's own.
    per_object = []
    while (path / f"mask_{len(per_object) + 1}.png").is_file():
        per_object.append(path / f"mask_{len(per_object) + 1}.png")
    photo = load_photo(path / "image.png", prompt, depth=_depth_file(path), mask=per_object or path / "mask.png",
                       require_prompt=False, labels=SCENE_LABELS)
    image, depth = photo.image, photo.depth
    masks = photo.masks
    mask = photo.union_mask
    frames = []
    n_objects = len(masks)
    for k, edit in enumerate(_read_transforms(path / "transforms.json", object_centroid(depth, masks)), start=1):
        fr = Frame(k, edit)
        gi, gt, gl = (path / f"gt_{kind}_{k:04d}.png" for kind in ("image", "true", "lifted"))
        fr.gt_image = load_image(gi) if gi.is_file() else None
        fr.gt_true = load_mask(gt) if gt.is_file() else None
        fr.gt_lifted = load_mask(gl) if gl.is_file() else None
        if n_objects > 1:
            for kind in ("true", "lifted"):
                files = [path / f"gt_{kind}_{k:04d}_{n}.png" for n in range(1, n_objects + 1)]
                if all(f.is_file() for f in files):
                    per = [load_mask(f) for f in files]
                    setattr(fr, f"gt_{kind}_objects", per)
                    if getattr(fr, f"gt_{kind}") is None:
                        setattr(fr, f"gt_{kind}", np.any(per, axis=0))
        frames.append(fr)
    return Scene(path.name, path, image, depth, mask, prompt, frames, masks)


def object_query(prompt: str) -> str:
    """The object's name in a caption such as ``"a toy car on a floor"`` -> ``"toy car"``.

    Used as the text query of the perception segmenter; falls back to the whole caption.
    """
    text = prompt.strip().rstrip(".").lower()
    for sep in (" on ", " in ", " behind ", " next to ", " near ", " with "):
        if sep in text:
            text = text.split(sep, 1)[0]
            break
    for article in ("a ", "an ", "the "):
        if text.startswith(article):
            text = text[len(article):]
            break
    return text.strip() or prompt
