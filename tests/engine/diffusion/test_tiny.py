"""engine.diffusion.tiny: the tiny random-weight SD2-depth-like model in the real diffusers layout.

Loaded here through the libraries' own from_pretrained (engine.diffusion.loading is tested in
test_loading.py); the `tiny-models` command in tests/engine/cli/test_tiny_models.py."""
from __future__ import annotations

import json

import pytest
import torch

from engine import registry
from engine.diffusion.sd2_config import SD2_DEPTH_UNET
from engine.diffusion.tiny import SCHEDULER_CONFIG, TINY_UNET, write_tiny_diffusion
from engine.registry import PICKLE_SUFFIXES

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Seed 0 twice and seed 1 once, each in its own folder."""
    root = tmp_path_factory.mktemp("tiny-diffusion")
    return {name: write_tiny_diffusion(root / name, seed=seed)
            for name, seed in (("a", 0), ("b", 0), ("c", 1))}


def _weights(folder):
    from safetensors.torch import load_file

    return {sub: load_file(str(folder / sub / name))
            for sub, name in (("unet", "diffusion_pytorch_model.safetensors"),
                              ("vae", "diffusion_pytorch_model.safetensors"),
                              ("text_encoder", "model.safetensors"))}


def test_layout_and_only_safetensors_weights(written):
    d = written["a"]
    assert all((d / c).is_dir() for c in COMPONENTS)
    index = json.loads((d / "model_index.json").read_text())
    assert {k for k in index if not k.startswith("_") and k != "note"} == set(COMPONENTS)
    files = [p for p in d.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    assert {p.parent.name for p in files if p.suffix == ".safetensors"} == {"unet", "vae", "text_encoder"}
    registry.check_weights("diffusion", d)  # accepted: raises nothing


def test_components_load_through_the_libraries_from_pretrained(written):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    d = written["a"]
    kw = dict(local_files_only=True, use_safetensors=True)
    unet = UNet2DConditionModel.from_pretrained(d, subfolder="unet", **kw)
    vae = AutoencoderKL.from_pretrained(d, subfolder="vae", **kw)
    text_encoder = CLIPTextModel.from_pretrained(d, subfolder="text_encoder", **kw)
    tokenizer = CLIPTokenizer.from_pretrained(d, subfolder="tokenizer", local_files_only=True)
    scheduler = DDIMScheduler.from_pretrained(d, subfolder="scheduler")

    assert unet.config.in_channels == vae.config.latent_channels + 1 == 5
    assert unet.config.cross_attention_dim == text_encoder.config.hidden_size
    assert text_encoder.config.vocab_size == len(tokenizer)
    assert text_encoder.config.bos_token_id == tokenizer.bos_token_id
    assert text_encoder.config.eos_token_id == tokenizer.eos_token_id
    for key, value in SCHEDULER_CONFIG.items():
        if not key.startswith("_"):
            assert scheduler.config[key] == value, key
    # the loaded weights are the written ones, all of them (nothing randomly initialised on load)
    saved = _weights(d)
    for sub, model in (("unet", unet), ("vae", vae), ("text_encoder", text_encoder)):
        state = model.state_dict()
        for name, tensor in saved[sub].items():
            assert torch.equal(state[name], tensor), (sub, name)

    # one denoising call of the whole chain runs: text -> UNet on (latent + depth) -> VAE decode
    ids = tokenizer(["a red box"], padding="max_length", max_length=tokenizer.model_max_length,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        text = text_encoder(ids).last_hidden_state
        latent = vae.encode(torch.rand(1, 3, 32, 32) * 2 - 1).latent_dist.mean
        x = torch.cat([latent, torch.rand(1, 1, *latent.shape[-2:])], dim=1)
        eps = unet(x, torch.tensor([500]), encoder_hidden_states=text).sample
        image = vae.decode(eps).sample
    assert eps.shape == latent.shape == (1, 4, 16, 16)
    assert image.shape == (1, 3, 32, 32) and torch.isfinite(image).all()


def test_same_block_structure_as_sd2_depth():
    """What the engine relies on (hooks on up_blocks[2] / [3], the layer schedule) is shared."""
    for key in ("in_channels", "out_channels", "down_block_types", "up_block_types", "use_linear_projection"):
        assert TINY_UNET[key] == SD2_DEPTH_UNET[key], key
    assert len(TINY_UNET["block_out_channels"]) == len(SD2_DEPTH_UNET["block_out_channels"])


def test_same_seed_same_weights_other_seed_other_weights(written):
    a, b, c = (_weights(written[k]) for k in "abc")
    for sub in a:
        assert a[sub].keys() == b[sub].keys() == c[sub].keys()
        assert all(torch.equal(a[sub][k], b[sub][k]) for k in a[sub]), sub
        assert not all(torch.equal(a[sub][k], c[sub][k]) for k in a[sub]), sub
    for sub in ("tokenizer", "scheduler"):
        for f in (written["a"] / sub).iterdir():
            assert f.read_bytes() == (written["c"] / sub / f.name).read_bytes(), f.name


def test_tokenizer_round_trips_text(written):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(written["a"], subfolder="tokenizer", local_files_only=True)
    for text in ("a red box in front of a wall", "the mug on the table", "café 3 dogs"):
        ids = tokenizer(text).input_ids
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.eos_token_id not in ids[1:-1]  # byte-level: nothing unknown
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.model_max_length == 77


def test_byte_vocabulary(written):
    vocab = json.loads((written["a"] / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    assert sorted(vocab.values()) == list(range(len(vocab))) and len(vocab) == 2 * 256 + 2
    chars = sorted(vocab, key=vocab.get)[:256]  # one character per byte, then those ending a word
    assert len(set(chars)) == 256 and not any(c.endswith("</w>") for c in chars)
    assert all(chr(b) in chars for b in range(ord("!"), ord("~") + 1))  # printable ASCII is itself
    assert " " not in chars  # the space byte maps to another printable character
    assert vocab["<|endoftext|>"] == len(vocab) - 1
    assert all(vocab[c + "</w>"] == vocab[c] + 256 for c in chars)
