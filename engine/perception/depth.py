"""Metric depth estimation (docs/design.md section 5: ZoeDepth by default, Depth Anything V2 metric option).

Any transformers depth model that predicts METRIC depth loads here through
``AutoModelForDepthEstimation`` + ``AutoImageProcessor`` (safetensors, no remote code). Models that
predict relative depth or disparity (e.g. Depth Anything V2 without "Metric") are refused: the
method lifts pixels to 3D in metres, and a relative map would silently distort every edit.
"""
from __future__ import annotations

import inspect
import logging

import numpy as np

from ..errors import EngineError, InputError, ModelNotFoundError
from ..images import to_uint8
from .common import check_image, load_role

log = logging.getLogger(__name__)

# Depth below this is treated as the estimator's floor (a camera cannot focus closer; a random or
# saturated head can output 0, and the method divides by depth).
MIN_DEPTH_M = 1e-2
MIN_SIDE = 16

_METRIC_TYPES = {"zoedepth", "glpn", "depth_pro"}


def _check_metric(config, where: str) -> None:
    kind = getattr(config, "model_type", "")
    if kind == "depth_anything":
        if getattr(config, "depth_estimation_type", "relative") != "metric":
            raise ModelNotFoundError(
                f"depth model {where}: this Depth Anything model predicts relative depth, not metres; "
                f"use a metric one (e.g. depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf)")
        return
    if kind not in _METRIC_TYPES:
        log.warning("depth model %s (%s) is not known to predict metric depth; using its output as metres",
                    where, kind)


def load_depth_model(model_dir=None, models_dir=None, device="auto", role: str = "depth"):
    """(model, image_processor, device) for ``role`` (``depth`` or ``depth-anything``), cached."""

    def build(path, dev):
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True, use_safetensors=True)
        _check_metric(model.config, str(path))
        return model.to(dev, torch.float32).eval(), processor

    (model, processor), dev = load_role(role, model_dir, models_dir, device, "depth model", build)
    return model, processor, dev


def estimate_depth(image, model_dir=None, models_dir=None, device="auto", role: str = "depth") -> np.ndarray:
    """Metric z-depth of ``image``.

    image: (H, W, 3) float in [0, 1] (or uint8), any aspect ratio.
    model_dir: override of the ``role`` model (local directory, ``org/name[@rev]``, or the other
        depth role's name, e.g. ``"depth-anything"``).
    Returns float32 (H, W): z-depth in metres (positive) at the input's size.
    """
    import torch

    # 1. Check inputs
    image = check_image(image)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InputError(f"image: {width}x{height} pixels is too small for depth estimation "
                         f"(each side at least {MIN_SIDE})")
    # 2. Load (cached)
    model, processor, dev = load_depth_model(model_dir, models_dir, device, role)
    # 3. Predict at the processor's resolution, aspect ratio kept
    inputs = processor(images=to_uint8(image), return_tensors="pt", input_data_format="channels_last")
    inputs = {k: v.to(dev) for k, v in inputs.items()}
    with torch.no_grad():
        outputs = model(**inputs)
    # 4. Back to the input's size (removing the processor's padding where it pads)
    post = processor.post_process_depth_estimation
    kwargs = {"target_sizes": [(height, width)]}
    if "source_sizes" in inspect.signature(post).parameters:
        kwargs["source_sizes"] = [(height, width)]
    depth = post(outputs, **kwargs)[0]["predicted_depth"]
    depth = depth.detach().float().cpu().numpy().astype(np.float32)
    if depth.shape != (height, width):  # processors that ignore target_sizes
        depth = torch.nn.functional.interpolate(torch.from_numpy(depth)[None, None], size=(height, width),
                                                mode="bicubic", align_corners=False)[0, 0].numpy()
    # 5. Validate: z-depth must be finite and positive (docs/design.md section 3)
    if not np.isfinite(depth).all():
        raise EngineError("depth estimation produced NaN or inf (a broken model or device); "
                          "try the CPU device or another depth model")
    floor = (depth < MIN_DEPTH_M).mean()
    if floor > 0:
        log.warning("depth estimate: %.1f%% of pixels below %.2f m, clamped", 100 * floor, MIN_DEPTH_M)
    return np.maximum(depth, MIN_DEPTH_M).astype(np.float32)
