"""Text-prompted object selection: Grounding DINO boxes for a query, then a SAM mask per box,
returned as ranked candidates the user can pick from (paper section 5; docs/design.md section 4 step 3).

Nothing matching is a clear result: :class:`~engine.errors.InputError` naming the query, never an
empty mask passed on silently.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..images import to_uint8
from .common import check_image, load_role, role_override

log = logging.getLogger(__name__)

BOX_THRESHOLD = 0.35  # Grounding DINO's published defaults for box and text scores
TEXT_THRESHOLD = 0.25
NMS_IOU = 0.5
MAX_QUERY_CHARS = 200


@dataclass
class Candidate:
    """One object found for a query. ``mask`` bool (H, W); ``score`` the detector's confidence in
    [0, 1]; ``box`` (x0, y0, x1, y1) in pixels; ``label`` the words of the query it matched;
    ``mask_score`` SAM's predicted IoU of the mask."""

    mask: np.ndarray
    score: float
    box: tuple[float, float, float, float]
    label: str
    mask_score: float = float("nan")


def normalise_query(query) -> str:
    """Grounding DINO wants lower case phrases ending with a period ("a red car.")."""
    if not isinstance(query, str) or not query.strip():
        raise InputError(f"object query: expected a non-empty text such as 'the car', got {query!r}")
    text = " ".join(query.strip().split())
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"object query: {len(text)} characters is too long (at most {MAX_QUERY_CHARS})")
    if not any(ch.isalnum() for ch in text):
        raise InputError(f"object query {query!r}: has no words")
    text = text.lower()
    return text if text.endswith(".") else text + "."


def load_detector(models_dir=None, override=None, device="auto"):
    def build(path, dev):
        import torch
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForZeroShotObjectDetection.from_pretrained(path, local_files_only=True,
                                                                    use_safetensors=True)
        return model.to(dev, torch.float32).eval(), processor

    (model, processor), dev = load_role("detector", override, models_dir, device, "detector model", build)
    return model, processor, dev


def detect_boxes(image, query, models_dir=None, overrides=None, device="auto",
                 box_threshold: float = BOX_THRESHOLD, text_threshold: float = TEXT_THRESHOLD):
    """Boxes for ``query``: list of (box (x0, y0, x1, y1), score, label), best first, duplicates
    (IoU > 0.5 with a better box) removed."""
    import torch
    from torchvision.ops import nms

    image = check_image(image)
    text = normalise_query(query)
    height, width = image.shape[:2]
    model, processor, dev = load_detector(models_dir, role_override(overrides, "detector"), device)
    inputs = processor(images=to_uint8(image), text=text, return_tensors="pt", input_data_format="channels_last")
    inputs = {k: v.to(dev) for k, v in inputs.items()}
    with torch.no_grad():
        outputs = model(**inputs)
    result = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
        target_sizes=[(height, width)])[0]
    boxes = result["boxes"].detach().float().cpu()
    scores = result["scores"].detach().float().cpu()
    labels = list(result["text_labels"]) if "text_labels" in result else [""] * len(scores)
    if len(scores) == 0:
        return []
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    ok = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    keep = [int(i) for i in nms(boxes[ok], scores[ok], NMS_IOU)]  # sorted by score, best first
    index = torch.nonzero(ok).flatten()
    out = []
    for k in keep:
        i = int(index[k])
        label = str(labels[i]).replace("[SEP]", "").replace("[CLS]", "").strip(" .") or text.rstrip(".")
        out.append((tuple(float(v) for v in boxes[i]), float(scores[i]), label))
    return out


def select_objects(image, query, models_dir=None, overrides=None, device="auto", max_candidates: int = 5,
                   box_threshold: float = BOX_THRESHOLD, text_threshold: float = TEXT_THRESHOLD) -> list[Candidate]:
    """Ranked candidates (best first, at most ``max_candidates``) for the object ``query`` names.

    image: (H, W, 3) float in [0, 1] (or uint8). overrides: role -> id or directory for
    ``detector`` and ``sam``. Raises InputError when nothing matches.
    """
    image = check_image(image)
    if not isinstance(max_candidates, int) or max_candidates < 1:
        raise InputError(f"max_candidates: expected a positive integer, got {max_candidates!r}")
    found = detect_boxes(image, query, models_dir, overrides, device, box_threshold, text_threshold)
    if not found:
        raise InputError(f"no object matching {query!r} found (no box scored above {box_threshold:g}); "
                         f"try other words, or give a mask or click the object")
    from .segment import masks_from_boxes

    height, width = image.shape[:2]
    candidates = []
    # Segment a few more boxes than asked for: a box whose mask comes out empty is dropped.
    boxes = found[: max_candidates + 2]
    for (box, score, label), (mask, mask_score) in zip(
            boxes, masks_from_boxes(image, [b for b, _, _ in boxes], models_dir, overrides, device)):
        # SAM may leak past the box it was given; keep the mask to the box (one pixel of slack).
        x0, y0, x1, y1 = box
        inside = np.zeros((height, width), bool)
        inside[max(0, int(y0) - 1):min(height, int(np.ceil(y1)) + 1),
               max(0, int(x0) - 1):min(width, int(np.ceil(x1)) + 1)] = True
        mask = mask & inside
        if not mask.any():
            log.info("candidate %r at %s: SAM returned an empty mask, dropped", label, box)
            continue
        candidates.append(Candidate(mask=mask, score=score, box=box, label=label, mask_score=mask_score))
        if len(candidates) == max_candidates:
            break
    if not candidates:
        raise InputError(f"no object matching {query!r} found: {len(found)} box(es) detected but "
                         f"segmentation gave empty masks; give a mask or click the object")
    return candidates
