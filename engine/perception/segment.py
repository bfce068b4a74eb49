"""Segment Anything masks from boxes and clicked points (docs/design.md section 5).

Loading is safe by construction: a checkpoint is read with ``torch.load(weights_only=True)`` (or
safetensors) and must be a PLAIN state dict (str -> tensor); anything else (a pickled module, a
dict holding other objects) is refused before any model sees it. segment-anything's own
``sam_model_registry[...](checkpoint=...)`` is never given the file, because it unpickles it
without ``weights_only``.

A SAM model directory holds either
- a release checkpoint (``sam_vit_b_01ec64.pth``, ``sam_vit_h_4b8939.pth``, ... anywhere below it,
  or a ``.safetensors`` with the same keys); the architecture (ViT-B/L/H) is read from the
  weights' shapes and built with ``segment_anything.sam_model_registry``; or
- ``sam_config.json`` (this project's format, see :data:`SAM_CONFIG_KEYS`) naming the checkpoint
  and the architecture's sizes, for non-standard sizes such as the tiny test model.
"""
from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelNotFoundError
from ..images import to_uint8
from .common import cached, check_image, resolve_model, role_override

log = logging.getLogger(__name__)

SAM_CONFIG_NAME = "sam_config.json"
# sam_config.json: {"format": "segment-anything", "checkpoint": file name relative to the json,
# and either "model_type": "vit_b" | "vit_l" | "vit_h" or the sizes below}
SAM_CONFIG_KEYS = {
    "image_size": 1024, "patch_size": 16, "encoder_embed_dim": 768, "encoder_depth": 12,
    "encoder_num_heads": 12, "encoder_global_attn_indexes": [2, 5, 8, 11], "encoder_window_size": 14,
    "prompt_embed_dim": 256, "mask_in_chans": 16, "decoder_depth": 2, "decoder_mlp_dim": 2048,
    "decoder_num_heads": 8, "iou_head_hidden_dim": 256,
}
_EMBED_DIM_TO_TYPE = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


class UnsafeCheckpointError(ModelNotFoundError):
    """A checkpoint that is not a plain state dict of tensors: refused, never unpickled further."""


def load_state_dict_file(path) -> dict:
    """A plain ``{name: tensor}`` state dict from ``.safetensors`` or a ``.pth`` read with
    ``weights_only=True``; anything else raises :class:`UnsafeCheckpointError`."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise UnsafeCheckpointError(f"SAM checkpoint {path}: not a readable safetensors file ({exc})") from exc
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for pickled objects; RuntimeError for junk
        raise UnsafeCheckpointError(
            f"SAM checkpoint {path}: refused, it is not a plain state dict of tensors "
            f"(loading with weights_only=True failed: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or not state:
        raise UnsafeCheckpointError(f"SAM checkpoint {path}: refused, expected a state dict "
                                    f"(name -> tensor), found {type(state).__name__}")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise UnsafeCheckpointError(
            f"SAM checkpoint {path}: refused, not a plain state dict: {len(bad)} entries are not "
            f"tensors (e.g. {bad[0]!r}: {type(state[bad[0]]).__name__})")
    return state


def build_sam(config: dict):
    """A randomly initialised ``segment_anything.modeling.Sam`` of the given sizes."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    c = dict(SAM_CONFIG_KEYS)
    unknown = set(config) - set(c) - {"format", "checkpoint", "model_type"}
    if unknown:
        raise ModelNotFoundError(f"{SAM_CONFIG_NAME}: unknown keys {sorted(unknown)}")
    c.update({k: v for k, v in config.items() if k in c})
    grid = c["image_size"] // c["patch_size"]
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=c["image_size"], patch_size=c["patch_size"], embed_dim=c["encoder_embed_dim"],
            depth=c["encoder_depth"], num_heads=c["encoder_num_heads"], mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=tuple(c["encoder_global_attn_indexes"]),
            window_size=c["encoder_window_size"], out_chans=c["prompt_embed_dim"]),
        prompt_encoder=PromptEncoder(
            embed_dim=c["prompt_embed_dim"], image_embedding_size=(grid, grid),
            input_image_size=(c["image_size"], c["image_size"]), mask_in_chans=c["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=c["decoder_depth"], embedding_dim=c["prompt_embed_dim"],
                                          mlp_dim=c["decoder_mlp_dim"], num_heads=c["decoder_num_heads"]),
            transformer_dim=c["prompt_embed_dim"], iou_head_depth=3,
            iou_head_hidden_dim=c["iou_head_hidden_dim"]),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def _find_checkpoint(root: Path) -> tuple[Path, dict]:
    """(checkpoint file, config) inside a SAM model directory, or a checkpoint file itself."""
    if root.is_file():
        return root, {}
    cfg_path = root / SAM_CONFIG_NAME
    if cfg_path.is_file():
        try:
            config = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"{cfg_path}: not valid JSON ({exc})") from None
        if not isinstance(config, dict) or not isinstance(config.get("checkpoint"), str):
            raise ModelNotFoundError(f"{cfg_path}: expected an object with a \"checkpoint\" file name")
        ckpt = (root / config["checkpoint"]).resolve()
        if root.resolve() not in ckpt.parents or not ckpt.is_file():
            raise ModelNotFoundError(f"{cfg_path}: checkpoint {config['checkpoint']!r} is not a file "
                                     f"inside {root}")
        return ckpt, config
    found = sorted(p for ext in ("*.safetensors", "*.pth", "*.pt") for p in root.rglob(ext))
    if not found:
        raise ModelNotFoundError(f"SAM model directory {root}: no checkpoint (.pth / .safetensors) "
                                 f"and no {SAM_CONFIG_NAME}")
    if len(found) > 1:
        raise ModelNotFoundError(f"SAM model directory {root}: several checkpoints "
                                 f"({', '.join(p.name for p in found)}); pass the file itself")
    return found[0], {}


def load_sam(models_dir=None, overrides=None, device="auto", role: str = "sam"):
    """``segment_anything.modeling.Sam`` for ``role`` in eval mode on ``device`` (cached).

    ``overrides[role]`` may also be a checkpoint FILE (``.pth`` / ``.safetensors``).
    """
    import torch

    from ..devices import resolve_device

    override = role_override(overrides, role)
    if override and Path(override).expanduser().is_file():
        root = Path(override).expanduser()
    else:
        root = resolve_model(role, override, models_dir)
    dev = resolve_device(device) if not isinstance(device, torch.device) else device

    def build():
        ckpt, config = _find_checkpoint(root)
        state = load_state_dict_file(ckpt)
        model_type = config.get("model_type")
        if model_type is None and set(config) - {"format", "checkpoint"}:
            sam = build_sam(config)
        else:
            if model_type is None:
                weight = state.get("image_encoder.patch_embed.proj.weight")
                model_type = _EMBED_DIM_TO_TYPE.get(int(weight.shape[0])) if weight is not None else None
            if model_type not in ("vit_b", "vit_l", "vit_h"):
                raise ModelNotFoundError(f"SAM checkpoint {ckpt}: not a ViT-B/L/H SAM checkpoint "
                                         f"(add a {SAM_CONFIG_NAME} for other sizes)")
            from segment_anything import sam_model_registry

            sam = sam_model_registry[model_type](checkpoint=None)
        try:
            sam.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelNotFoundError(f"SAM checkpoint {ckpt}: does not fit the SAM architecture "
                                     f"({str(exc).splitlines()[0]})") from None
        return sam.to(dev).eval()

    return cached(("sam", str(root), str(dev)), build)


def _predictor(image, models_dir, overrides, device, role):
    from segment_anything import SamPredictor

    predictor = SamPredictor(load_sam(models_dir, overrides, device, role))
    predictor.set_image(to_uint8(image), image_format="RGB")
    return predictor


def _check_box(box, height: int, width: int, name: str = "box") -> np.ndarray:
    arr = np.asarray(box, dtype=np.float64).reshape(-1)
    if arr.shape != (4,) or not np.isfinite(arr).all():
        raise InputError(f"{name}: expected four finite numbers (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = arr
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"{name}: ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty (need x1 > x0 and y1 > y0)")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise InputError(f"{name}: ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the {width}x{height} image")
    return np.clip(arr, 0, [width, height, width, height])


def _check_points(point, height: int, width: int) -> np.ndarray:
    arr = np.asarray(point, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0 or not np.isfinite(arr).all():
        raise InputError(f"point: expected (x, y) or a list of (x, y) pixel coordinates, got {point!r}")
    outside = (arr[:, 0] < 0) | (arr[:, 0] >= width) | (arr[:, 1] < 0) | (arr[:, 1] >= height)
    if outside.any():
        raise InputError(f"point: {arr[outside][0].tolist()} lies outside the {width}x{height} image "
                         f"(x is the column, y the row from the top)")
    return arr


def mask_from_prompt(image, point=None, box=None, models_dir=None, overrides=None, device="auto",
                     point_labels=None, role: str = "sam") -> np.ndarray:
    """SAM mask for a clicked point (or points) and/or a box.

    point: (x, y) in pixels, x the column and y the row from the TOP (docs/design.md section 3), or a
        list of them; ``point_labels`` 1 = on the object (default), 0 = background.
    box: (x0, y0, x1, y1) in pixels.
    Returns bool (H, W); raises InputError when SAM finds no object there.
    """
    image = check_image(image)
    height, width = image.shape[:2]
    if point is None and box is None:
        raise InputError("mask prompt: give a point or a box")
    coords = labels = None
    if point is not None:
        coords = _check_points(point, height, width)
        labels = np.ones(len(coords), int) if point_labels is None else np.asarray(point_labels, int).reshape(-1)
        if labels.shape != (len(coords),) or not np.isin(labels, (0, 1)).all():
            raise InputError(f"point_labels: expected one 0/1 label per point, got {point_labels!r}")
    box_arr = _check_box(box, height, width) if box is not None else None
    predictor = _predictor(image, models_dir, overrides, device, role)
    return _predict(predictor, coords, labels, box_arr)


def _predict(predictor, coords, labels, box_arr) -> np.ndarray:
    """The one SAM call of a prompt (`mask_from_prompt`, `PointPicker`)."""
    # One point is ambiguous (part / object / group): ask for three masks and keep the best scored.
    multimask = box_arr is None and coords is not None and len(coords) == 1
    masks, scores, _ = predictor.predict(point_coords=coords, point_labels=labels, box=box_arr,
                                         multimask_output=multimask)
    mask = np.asarray(masks[int(np.argmax(scores))], bool)
    if not mask.any():
        raise InputError("mask prompt: SAM found no object at the given point/box; click on the object")
    return mask


def masks_from_boxes(image, boxes, models_dir=None, overrides=None, device="auto",
                     role: str = "sam") -> list[tuple[np.ndarray, float]]:
    """(mask bool (H, W), SAM's predicted IoU) for each box, the image encoded once."""
    image = check_image(image)
    height, width = image.shape[:2]
    checked = [_check_box(b, height, width, f"box {i}") for i, b in enumerate(boxes)]
    if not checked:
        return []
    predictor = _predictor(image, models_dir, overrides, device, role)
    out = []
    for b in checked:
        masks, scores, _ = predictor.predict(box=b, multimask_output=False)
        out.append((np.asarray(masks[0], bool), float(scores[0])))
    return out


def parse_point(value, option: str = "--point") -> tuple:
    """A clicked point as the command line gives it, ``"X,Y"`` (photo pixels, decimals allowed:
    x the column, y the row from the top), or an (x, y) pair -> (x, y) floats."""
    text = value if isinstance(value, str) else ",".join(str(v) for v in np.asarray(value).reshape(-1))
    parts = [p.strip() for p in text.split(",")]
    try:
        x, y = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        x = y = None
    if x is None or not (np.isfinite(x) and np.isfinite(y)):
        raise InputError(f"{option} {text!r}: expected X,Y in photo pixels (x the column, y the row "
                         f"from the top), e.g. {option} 120,84")
    return x, y


def point_prompt(points, points_out=(), height=None, width=None, option: str = "--point",
                 option_out: str = "--point-out") -> tuple:
    """SAM's point prompt for points on the object (``points``) and outside it (``points_out``),
    each "X,Y" or (x, y) in photo pixels, checked against the photo's size: (coords (P, 2) float64,
    labels (P,) int, 1 on the object and 0 outside). At least one point must be on the object."""
    inside = [parse_point(p, option) for p in points or ()]
    outside = [parse_point(p, option_out) for p in points_out or ()]
    if not inside:
        raise InputError(f"{option_out}: needs at least one {option} on the object "
                         "(points outside it only say what is not the object)")
    for option_name, group in ((option, inside), (option_out, outside)):
        for x, y in group:
            if height is not None and not (0 <= x < width and 0 <= y < height):
                raise InputError(f"{option_name} {x:g},{y:g}: lies outside the {width}x{height} photo "
                                 "(x is the column, y the row from the top)")
    coords = np.array(inside + outside, dtype=np.float64)
    labels = np.array([1] * len(inside) + [0] * len(outside), dtype=int)
    return coords, labels


def mask_from_points(image, points, points_out=(), models_dir=None, overrides=None, device="auto",
                     role: str = "sam", option: str = "--point", option_out: str = "--point-out") -> np.ndarray:
    """The SAM mask of clicked points (`point_prompt`): what the add-on's pick tool and the
    command line's ``--point`` / ``--point-out`` compute. bool (H, W)."""
    return PointPicker(image, models_dir, overrides, device, role).mask(points, points_out, option, option_out)


class PointPicker:
    """SAM on one photo for a series of point prompts (the pick tool asks after every click): the
    image is encoded once, each `mask` is `mask_from_points` of those points."""

    def __init__(self, image, models_dir=None, overrides=None, device="auto", role: str = "sam"):
        self.image = check_image(image)
        self._predictor = _predictor(self.image, models_dir, overrides, device, role)

    def mask(self, points, points_out=(), option: str = "--point", option_out: str = "--point-out") -> np.ndarray:
        coords, labels = point_prompt(points, points_out, *self.image.shape[:2], option, option_out)
        return _predict(self._predictor, coords, labels, None)
