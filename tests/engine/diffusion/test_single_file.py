"""Original single-file checkpoints (engine.diffusion.single_file): the tiny diffusers model written
in the LDM key layout (tests/ldm_checkpoint.py, the inverse of diffusers' conversion) loads through
`--models FILE` / a file override and edits to the SAME frames, bit for bit (the conversion only
renames and reshapes tensors: no arithmetic, so no round-off); converted once per file content;
pickles only through weights_only; the SD2 tokenizer derived from CLIP's BPE merges."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from edit_scene import scene, shift
from engine import registry
from engine.diffusion import single_file
from engine.errors import ModelNotFoundError
from engine.pipeline import Engine
from engine.settings import EditSettings, RuntimeOptions
from ldm_checkpoint import write_ldm_checkpoint

pytestmark = pytest.mark.slow
SETTINGS = EditSettings(resolution=32, steps=4, guided_steps=3, inversion="negative-prompt",
                        guidance_step_size=0.002)
CPU32 = RuntimeOptions(device="cpu", dtype="fp32")
WEIGHTS = {"unet": "diffusion_pytorch_model.safetensors", "vae": "diffusion_pytorch_model.safetensors",
           "text_encoder": "model.safetensors"}


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "diffusion-handles" / "converted"


def _same_weights(a, b):
    for sub, name in WEIGHTS.items():
        x, y = load_file(str(a / sub / name)), load_file(str(b / sub / name))
        assert set(x) == set(y), (sub, set(x) ^ set(y))
        for k in x:
            assert torch.equal(x[k], y[k]), (sub, k)


def test_ldm_checkpoint_converts_to_the_same_model_and_frames(tiny_models_dir, tmp_path, user_cache):
    file = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "512-depth-ema.safetensors")
    assert any(k.startswith("model.diffusion_model.input_blocks.") for k in load_file(str(file)))
    found = registry.resolve_source("diffusion", None, file)  # --models FILE
    assert found.kind == "file" and found.path.parent == user_cache
    _same_weights(tiny_models_dir / "diffusion", found.path)

    image, depth, mask = scene()
    frames = {}
    for name, models in (("diffusers", tiny_models_dir), ("single file", file)):
        engine = Engine(models_dir=models, settings=SETTINGS, runtime=CPU32)
        prepared = engine.prepare(image, "a red box in front of a wall", depth, mask)
        frames[name] = [r.image for r in engine.edit(prepared, [shift(0.1), shift(0.2)])]
        if name == "single file":
            assert prepared.model_id == file.name and prepared.revision.startswith("file-")
    for a, b in zip(frames["diffusers"], frames["single file"]):
        np.testing.assert_array_equal(a, b)  # bit for bit: the conversion copies every tensor


def test_conversion_is_cached_by_content(tiny_models_dir, tmp_path, user_cache):
    file = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "a" / "model.safetensors")
    first = single_file.converted_model("diffusion", file)
    stamp = (first / single_file.MARK).stat().st_mtime_ns
    moved = tmp_path / "b" / "renamed.safetensors"
    moved.parent.mkdir()
    os.replace(file, moved)
    os.replace(file.with_name("model.config"), moved.with_name("renamed.config"))  # its configuration
    assert single_file.converted_model("diffusion", moved) == first  # same content: nothing converted
    assert (first / single_file.MARK).stat().st_mtime_ns == stamp
    assert len(list(user_cache.iterdir())) == 1
    data = load_file(str(moved))
    data["model.diffusion_model.out.2.bias"] = data["model.diffusion_model.out.2.bias"] + 1
    from safetensors.torch import save_file

    save_file(data, str(moved))
    assert single_file.converted_model("diffusion", moved) != first  # other content: its own conversion


def test_ckpt_pickle_is_read_with_weights_only(tiny_models_dir, tmp_path, user_cache):
    file = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "512-depth-ema.ckpt")
    _same_weights(tiny_models_dir / "diffusion", registry.resolve("diffusion", str(file)))

    class Payload:  # a pickle that would run code on an unrestricted torch.load
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "ran"),))

    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": Payload()}, str(evil))
    with pytest.raises(ModelNotFoundError, match="evil.ckpt.*cannot be read as a checkpoint") as info:
        registry.resolve("diffusion", str(evil))
    assert not (tmp_path / "ran").exists() and "\n" not in str(info.value)


def test_wrong_checkpoints_are_one_clear_line(tiny_models_dir, tmp_path, user_cache):
    file = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "depth.safetensors")
    with pytest.raises(ModelNotFoundError, match=r"depth-to-image checkpoint \(its UNet takes 5 input channels\); "
                                                 r"the 'inpaint' role needs 9"):
        registry.resolve("inpaint", str(file))
    bare = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "bare.safetensors", with_config=False)
    with pytest.raises(ModelNotFoundError, match="bare.safetensors.*cannot be converted") as info:
        registry.resolve("diffusion", str(bare))  # the bundled SD2 configuration does not fit a tiny model
    assert "\n" not in str(info.value)
    assert not any(p.name.endswith(".tmp-" + str(os.getpid())) for p in user_cache.glob("*"))
    with pytest.raises(ModelNotFoundError, match="is a file; this role loads a model folder"):
        registry.resolve("depth", str(file))


def test_inpainting_checkpoint_loads_as_the_inpaint_role(tiny_models_dir, tmp_path, user_cache):
    from engine.perception.removal import load_inpaint_pipeline

    file = write_ldm_checkpoint(tiny_models_dir / "inpaint", tmp_path / "512-inpainting-ema.safetensors")
    path = registry.resolve("inpaint", str(file))
    _same_weights(tiny_models_dir / "inpaint", path)
    pipe, _ = load_inpaint_pipeline(None, str(file), "cpu")
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline" and pipe.unet.config.in_channels == 9


def test_bundled_sd2_configuration_and_tokenizer(tmp_path):
    """What a real 512-depth-ema file is converted with: SD2-depth's UNet (5 input channels), VAE,
    the 23-layer OpenCLIP text tower, and SD2's tokenizer (CLIP's 49408 tokens, '!' padding)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTokenizer

    single_file.write_bundled_configs("diffusion", tmp_path)
    unet = json.loads((tmp_path / "unet" / "config.json").read_text())
    assert unet["in_channels"] == 5 and unet["cross_attention_dim"] == 1024
    assert UNet2DConditionModel.load_config(str(tmp_path), subfolder="unet")["block_out_channels"] == [320, 640, 1280, 1280]
    assert CLIPTextConfig.from_pretrained(tmp_path / "text_encoder").num_hidden_layers == 23
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path / "tokenizer")
    assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77 and tokenizer.pad_token == "!"
    ids = tokenizer("a photo of a cat").input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|startoftext|>") == 49406 and ids[-1] == 49407
    assert tokenizer.convert_ids_to_tokens(ids[1:-1]) == ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]
    single_file.write_bundled_configs("inpaint", tmp_path / "inpaint")
    assert json.loads((tmp_path / "inpaint" / "unet" / "config.json").read_text())["in_channels"] == 9


def test_command_line_models_file(tiny_models_dir, tmp_path, user_cache, monkeypatch):
    """`engine edit --models FILE` (and the report names the file and its content revision)."""
    from cli_photo import FAST, write_photo, write_shifts
    from engine.cli import main

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    file = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "512-depth-ema.safetensors")
    write_photo(tmp_path)
    write_shifts(tmp_path / "t.json", [0.1])
    out = tmp_path / "out"
    code = main(["edit", "--image", str(tmp_path / "image.png"), "--depth", str(tmp_path / "depth.npy"),
                 "--mask", str(tmp_path / "mask.png"), "--prompt", "a box", "--transforms", str(tmp_path / "t.json"),
                 "--out", str(out), "--models", str(file), *FAST])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model_id"] == file.name and report["model_revision"].startswith("file-")
    assert (out / "frame_0001.png").is_file()
    assert main(["edit", "--image", str(tmp_path / "image.png"), "--prompt", "a box", "--transforms",
                 str(tmp_path / "t.json"), "--out", str(tmp_path / "o2"), "--models", str(tmp_path / "t.json")]) == 2
