"""engine.perception.tiny: tiny random-weight perception models, loaded here through the
libraries' own loaders (transformers / diffusers from_pretrained; SAM's state dict into the
segment-anything architecture its sam_config.json describes)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import registry
from engine.perception import tiny
from engine.perception.segment import SAM_CONFIG_NAME, build_sam


def _tensors(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("role", ["depth", "depth-anything"])
def test_depth_models_load_and_estimate(tiny_models_dir, role):
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    d = tiny_models_dir / role
    processor = AutoImageProcessor.from_pretrained(d, local_files_only=True)
    model = AutoModelForDepthEstimation.from_pretrained(d, local_files_only=True, use_safetensors=True).eval()
    assert model.config.depth_estimation_type == "metric" if role == "depth-anything" else \
        type(model).__name__ == "ZoeDepthForDepthEstimation"
    image = (np.random.default_rng(0).uniform(size=(40, 56, 3)) * 255).astype(np.uint8)
    with torch.no_grad():
        out = model(**processor(images=image, return_tensors="pt")).predicted_depth
    assert out.ndim == 3 and torch.isfinite(out).all()


def test_detector_loads_and_its_tokenizer_round_trips(tiny_models_dir):
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    d = tiny_models_dir / "detector"
    processor = AutoProcessor.from_pretrained(d, local_files_only=True)
    model = AutoModelForZeroShotObjectDetection.from_pretrained(d, local_files_only=True,
                                                                use_safetensors=True).eval()
    assert type(model).__name__ == "GroundingDinoForObjectDetection"
    tok = processor.tokenizer
    for text in ("a red car", "the small blue mug on the table"):
        ids = tok(text + " .").input_ids
        assert tok.unk_token_id not in ids
        assert tok.convert_ids_to_tokens(ids) == ["[CLS]", *text.split(), ".", "[SEP]"]
        assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text
    assert tok.unk_token_id in tok("a zebra").input_ids  # a word it does not know
    image = (np.random.default_rng(0).uniform(size=(48, 64, 3)) * 255).astype(np.uint8)
    with torch.no_grad():
        out = model(**processor(images=image, text="a red car .", return_tensors="pt"))
    assert out.pred_boxes.shape == (1, model.config.num_queries, 4)


def test_sam_state_dict_fits_the_architecture_of_its_config(tiny_models_dir):
    d = tiny_models_dir / "sam"
    config = json.loads((d / SAM_CONFIG_NAME).read_text())
    assert config == tiny.TINY_SAM_CONFIG
    state = torch.load(d / config["checkpoint"], map_location="cpu", weights_only=True)  # a plain state dict
    assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    sam = build_sam(config)
    sam.load_state_dict(state, strict=True)
    assert sam.image_encoder.img_size == config["image_size"]


def test_inpaint_pipeline_loads_and_its_tokenizer_round_trips(tiny_models_dir):
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(tiny_models_dir / "inpaint", local_files_only=True,
                                                          use_safetensors=True, safety_checker=None)
    assert pipe.unet.config.in_channels == 9  # 4 latent + 1 mask + 4 masked-image latent
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)
    ids = pipe.tokenizer("a red mug.").input_ids
    assert pipe.tokenizer.decode(ids, skip_special_tokens=True) == "a red mug ."


@pytest.mark.parametrize("role", ["depth", "depth-anything", "detector", "sam", "inpaint"])
def test_weights_are_safetensors_except_sams_checkpoint(tiny_models_dir, role):
    d = tiny_models_dir / role
    files = [p for p in d.rglob("*") if p.is_file()]
    pickles = [p for p in files if p.suffix.lower() in registry.PICKLE_SUFFIXES]
    if role == "sam":
        # segment-anything's own format: a .pth state dict, read with weights_only=True
        assert [p.name for p in pickles] == [tiny.TINY_SAM_CONFIG["checkpoint"]]
        assert role in registry.PICKLE_ALLOWED_ROLES
    else:
        assert pickles == [] and any(p.suffix == ".safetensors" for p in files)
    registry.check_weights(role, d)  # accepted


@pytest.mark.parametrize("writer, load", [
    (tiny.write_tiny_depth, "depth"),
    (tiny.write_tiny_sam, "sam"),
])
def test_same_seed_same_weights_other_seed_other_weights(tmp_path, writer, load):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        writer(tmp_path / name, seed=seed)
    if load == "sam":
        states = [torch.load(tmp_path / n / tiny.TINY_SAM_CONFIG["checkpoint"], weights_only=True) for n in "abc"]
    else:
        from safetensors.torch import load_file

        states = [load_file(str(tmp_path / n / "model.safetensors")) for n in "abc"]
    a, b, c = states
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
