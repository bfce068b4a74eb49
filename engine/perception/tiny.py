"""Tiny random-weight perception models in their REAL on-disk formats (docs/design.md section 6).

Each writer builds the same classes a real download holds, with small sizes, and saves them the
way the real repositories are laid out, so they load through exactly the same code:
- depth:          ZoeDepth (tiny BEiT backbone), ``save_pretrained`` + ZoeDepthImageProcessor
- depth-anything: Depth Anything (tiny DINOv2 backbone, metric head) + DPTImageProcessor
- detector:       Grounding DINO (tiny Swin + tiny BERT) + GroundingDinoProcessor with a BERT
                  tokenizer whose vocabulary (``vocab.txt``) is written here
- sam:            ``segment_anything.modeling.Sam`` with a tiny ViT encoder, its state dict saved
                  as a ``.pth`` plus ``sam_config.json`` (see :mod:`engine.perception.segment`)
- inpaint:        a diffusers StableDiffusionInpaintPipeline (tiny UNet with 9 input channels,
                  tiny VAE, tiny CLIP text encoder and tokenizer)
Random weights make the outputs meaningless; tests check shapes, types, ranges and contracts.
"""
from __future__ import annotations

import json
from pathlib import Path

# Words the tiny tokenizers know: enough for the queries tests use.
TINY_WORDS = ["a", "an", "the", "car", "cat", "dog", "red", "blue", "green", "object", "mug", "cup",
              "chair", "table", "person", "box", "ball", "lamp", "plant", "vase", "book", "bottle",
              "left", "right", "small", "big", "on", "of", "and", "background", "photo"]


def _seed(seed: int):
    import torch

    torch.manual_seed(seed)


def write_tiny_depth(out_dir, seed: int = 0) -> None:
    from transformers import BeitConfig, ZoeDepthConfig, ZoeDepthForDepthEstimation, ZoeDepthImageProcessor

    _seed(seed)
    backbone = BeitConfig(image_size=64, patch_size=8, hidden_size=16, num_hidden_layers=4,
                          num_attention_heads=2, intermediate_size=32, out_indices=[1, 2, 3, 4],
                          use_relative_position_bias=True, reshape_hidden_states=False, add_fpn=False)
    config = ZoeDepthConfig(
        backbone_config=backbone, neck_hidden_sizes=[8, 8, 16, 16], fusion_hidden_size=8,
        bottleneck_features=8, num_relative_features=4, bin_embedding_dim=8, num_attractors=[4, 2, 2, 1],
        bin_configurations=[{"n_bins": 8, "min_depth": 0.5, "max_depth": 10.0}],
        num_patch_transformer_layers=1, patch_transformer_hidden_size=8,
        patch_transformer_intermediate_size=16, patch_transformer_num_attention_heads=2)
    model = ZoeDepthForDepthEstimation(config).eval()
    processor = ZoeDepthImageProcessor(size={"height": 64, "width": 64}, keep_aspect_ratio=True,
                                       ensure_multiple_of=8)
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


def write_tiny_depth_anything(out_dir, seed: int = 0) -> None:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    _seed(seed)
    backbone = Dinov2Config(image_size=28, patch_size=14, hidden_size=16, num_hidden_layers=4,
                            num_attention_heads=2, intermediate_size=32,
                            out_indices=[1, 2, 3, 4], reshape_hidden_states=False, apply_layernorm=True)
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 8, 16, 16],
                                 fusion_hidden_size=8, head_hidden_size=8, reassemble_hidden_size=16,
                                 patch_size=14, depth_estimation_type="metric", max_depth=20)
    model = DepthAnythingForDepthEstimation(config).eval()
    processor = DPTImageProcessor(size={"height": 42, "width": 42}, keep_aspect_ratio=True,
                                  ensure_multiple_of=14, do_pad=False,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


def write_tiny_detector(out_dir, seed: int = 0) -> None:
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    _seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + TINY_WORDS
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(out)
    backbone = SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                          num_heads=[1, 1, 1, 1], window_size=4, out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, num_queries=20, encoder_layers=1,
        decoder_layers=2, encoder_ffn_dim=16, decoder_ffn_dim=16, encoder_attention_heads=2,
        decoder_attention_heads=2, num_feature_levels=4, max_text_len=32, encoder_n_points=2,
        decoder_n_points=2)
    model = GroundingDinoForObjectDetection(config).eval()
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192}),
        tokenizer=tokenizer)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


TINY_SAM_CONFIG = {
    "format": "segment-anything", "checkpoint": "sam_tiny.pth",
    "image_size": 64, "patch_size": 8, "encoder_embed_dim": 16, "encoder_depth": 2,
    "encoder_num_heads": 2, "encoder_global_attn_indexes": [1], "encoder_window_size": 4,
    "prompt_embed_dim": 32, "mask_in_chans": 8, "decoder_depth": 2, "decoder_mlp_dim": 32,
    "decoder_num_heads": 2, "iou_head_hidden_dim": 16,
}


def write_tiny_sam(out_dir, seed: int = 0) -> None:
    import torch

    from .segment import SAM_CONFIG_NAME, build_sam

    _seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sam = build_sam(TINY_SAM_CONFIG).eval()
    torch.save(sam.state_dict(), out / TINY_SAM_CONFIG["checkpoint"])
    (out / SAM_CONFIG_NAME).write_text(json.dumps(TINY_SAM_CONFIG, indent=2) + "\n", encoding="utf-8")


def _write_tiny_clip_tokenizer(out: Path):
    """A byte-level BPE vocabulary in CLIP's format (vocab.json + merges.txt), no merges."""
    from transformers import CLIPTokenizer

    out.mkdir(parents=True, exist_ok=True)
    symbols = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(".,!?'-0123456789")
    tokens = ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"), model_max_length=77)
    tokenizer.save_pretrained(out)
    return tokenizer, len(tokens)


def write_tiny_inpaint(out_dir, seed: int = 0) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    _seed(seed)
    out = Path(out_dir)
    tokenizer, vocab_size = _write_tiny_clip_tokenizer(out / "tokenizer")
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8), latent_channels=4,
                        norm_num_groups=4, sample_size=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=16,
                                                num_hidden_layers=1, num_attention_heads=2,
                                                max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                                                pad_token_id=1, projection_dim=16))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
