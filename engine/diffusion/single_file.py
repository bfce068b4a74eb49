"""Original single-file SD2 checkpoints (``512-depth-ema.safetensors`` / ``.ckpt``, as Automatic1111
and ComfyUI use them; ``512-inpainting-ema`` for the inpaint role), converted once into the diffusers
folder layout the loaders read.

The conversion is diffusers' own: ``UNet2DConditionModel.from_single_file`` and
``AutoencoderKL.from_single_file`` with the SD2 configuration this project bundles
(``engine.diffusion.sd2_config``), and the OpenCLIP text tower through
``diffusers.loaders.single_file_utils.convert_open_clip_checkpoint`` into a ``CLIPTextModel``. The
tokenizer is derived from OpenAI CLIP's BPE merges shipped in ``data/`` (MIT licence, the file
``open_clip`` ships; SD2's tokenizer is that vocabulary with ``!`` as padding). A folder
``<checkpoint stem>.config/`` beside the file, in the diffusers layout (``unet/config.json``,
``vae/config.json``, ``text_encoder/config.json``, ``tokenizer/``, ``scheduler/``), takes the
place of the bundled configuration (a fine-tune with another architecture; the tests' tiny model).

A ``.safetensors`` file is read as tensors; a pickle (``.ckpt``) only through
``torch.load(weights_only=True)``. The converted folder lives in the user's cache
(``~/.cache/diffusion-handles/converted/<role>-<sha256 of the file>``), keyed by the file's
content (its digest cached by path, size and mtime), so the second use costs nothing.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import ModelNotFoundError

MARK = "single-file.json"  # written last: a folder without it is an unfinished conversion
DATA = Path(__file__).resolve().parent / "data"
BPE = DATA / "clip_bpe_simple_vocab_16e6.txt.gz"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
# UNet input channels of each role's model: 4 latents + 1 depth; 4 latents + 4 masked image + 1 mask
IN_CHANNELS = {"diffusion": 5, "inpaint": 9}
UNET_KEY = "model.diffusion_model.input_blocks.0.0.weight"


def converted_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "diffusion-handles" / "converted"


def converted_model(role: str, file) -> Path:
    """The diffusers folder converted from the checkpoint ``file`` for ``role`` (converted now when
    this content was never converted)."""
    from ..digests import file_content_digest

    file = Path(file).expanduser()
    if file.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ModelNotFoundError(f"model file for role {role!r}: {str(file)!r} is not a checkpoint "
                                 f"(expected {', '.join(CHECKPOINT_SUFFIXES)})")
    digest = file_content_digest(file)
    out = converted_root() / f"{role}-{digest[:24]}"
    if (out / MARK).is_file():
        return out
    work = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        convert(role, file, work)
        (work / MARK).write_text(json.dumps({"role": role, "file": str(file), "sha256": digest}), encoding="utf-8")
        if not (out / MARK).is_file():  # else another process converted the same content meanwhile
            shutil.rmtree(out, ignore_errors=True)  # an unfinished leftover
            os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def converted_revision(path) -> str | None:
    """A converted folder's revision: its checkpoint's content digest (None: not a conversion)."""
    try:
        mark = json.loads((Path(path) / MARK).read_text(encoding="utf-8"))
        return "file-" + str(mark["sha256"])[:16]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_checkpoint(file: Path) -> dict:
    """The checkpoint's tensors by name: safetensors as is; a pickle with ``weights_only=True`` (and
    its ``state_dict`` entry, as LDM's .ckpt files nest it). One ModelNotFoundError naming the file."""
    import torch

    try:
        if file.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(str(file), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
    except Exception as exc:  # corrupt file, a pickle that is more than tensors
        hint = "" if file.suffix.lower() == ".safetensors" else (
            "; a pickle is read only as plain tensors (weights_only): a .safetensors copy of it loads")
        raise ModelNotFoundError(f"model file {str(file)!r}: cannot be read as a checkpoint "
                                 f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
                                 f"{hint}") from exc
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelNotFoundError(f"model file {str(file)!r}: holds no tensors")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def convert(role: str, file: Path, out: Path) -> None:
    """Write the diffusers layout of the checkpoint ``file`` into ``out``."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel

    from ..errors import model_load_errors

    checkpoint = read_checkpoint(file)
    unet_in = checkpoint.get(UNET_KEY)
    if unet_in is None or unet_in.ndim != 4:
        raise ModelNotFoundError(f"model file {str(file)!r}: not a Stable Diffusion checkpoint (no {UNET_KEY})")
    if unet_in.shape[1] != IN_CHANNELS[role]:
        kind = {5: "a depth-to-image", 9: "an inpainting", 4: "a text-to-image"}.get(int(unet_in.shape[1]), "another")
        raise ModelNotFoundError(
            f"model file {str(file)!r}: {kind} checkpoint (its UNet takes {unet_in.shape[1]} input channels); "
            f"the {role!r} role needs {IN_CHANNELS[role]} (e.g. the original "
            f"{'512-depth-ema' if role == 'diffusion' else '512-inpainting-ema'}.safetensors)")
    out.mkdir(parents=True, exist_ok=True)
    configs = file.with_name(file.stem + ".config")
    if not configs.is_dir():
        configs = out / "config"
        write_bundled_configs(role, configs)
    kw = dict(config=str(configs), local_files_only=True, torch_dtype=torch.float32)
    try:
        # extract_ema: where a file holds both, the EMA weights (the ones released for inference)
        unet = UNet2DConditionModel.from_single_file(checkpoint, subfolder="unet", extract_ema=True, **kw)
        vae = AutoencoderKL.from_single_file(checkpoint, subfolder="vae", **kw)
        text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(configs / "text_encoder"))
        converted = convert_open_clip_checkpoint(text_encoder, checkpoint)
        # diffusers names CLIPTextModel's weights text_model.*; transformers 5 has no such prefix
        converted.update({k[len("text_model."):]: v for k, v in list(converted.items()) if k.startswith("text_model.")})
        expected = text_encoder.state_dict()  # SD2 keeps 23 of OpenCLIP's 24 layers: the rest are not loaded
        missing = [k for k in expected if k not in converted]
        if missing:
            raise ValueError(f"the text encoder has no weights for {missing[0]} (and {len(missing) - 1} more)")
        text_encoder.load_state_dict({k: converted[k] for k in expected}, strict=True)
    except model_load_errors() + (RuntimeError,) as exc:
        raise ModelNotFoundError(f"model file {str(file)!r}: cannot be converted "
                                 f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})") from exc
    unet.save_pretrained(out / "unet", safe_serialization=True)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    shutil.copytree(configs / "tokenizer", out / "tokenizer")
    shutil.copytree(configs / "scheduler", out / "scheduler")
    import diffusers

    index = {"_class_name": "StableDiffusionDepth2ImgPipeline" if role == "diffusion" else "StableDiffusionInpaintPipeline",
             "_diffusers_version": diffusers.__version__,
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "DDIMScheduler"]}
    if role == "inpaint":
        index.update(safety_checker=[None, None], feature_extractor=[None, None], requires_safety_checker=False)
    (out / "model_index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    shutil.rmtree(out / "config", ignore_errors=True)


def write_bundled_configs(role: str, out: Path) -> None:
    """SD2's configuration in the diffusers layout (the UNet of ``role``, the VAE, the OpenCLIP
    text tower, the scheduler and the tokenizer derived from CLIP's BPE merges)."""
    from diffusers import DDIMScheduler

    from .sd2_config import SD2_DEPTH_UNET, SD2_DEPTH_VAE, SD2_TEXT_ENCODER, SD2_TOKENIZER
    from .tiny import SCHEDULER_CONFIG

    configs = {"unet": ("UNet2DConditionModel", dict(SD2_DEPTH_UNET, in_channels=IN_CHANNELS[role])),
               "vae": ("AutoencoderKL", SD2_DEPTH_VAE),
               "text_encoder": ("CLIPTextModel", dict(SD2_TEXT_ENCODER, **SD2_TOKENIZER["token_ids"]))}
    for sub, (name, config) in configs.items():
        (out / sub).mkdir(parents=True, exist_ok=True)
        (out / sub / "config.json").write_text(json.dumps({"_class_name": name, **config}, indent=2),
                                               encoding="utf-8")
    DDIMScheduler(**{k: v for k, v in SCHEDULER_CONFIG.items() if not k.startswith("_")}).save_pretrained(out / "scheduler")
    write_sd2_tokenizer(out / "tokenizer")


def write_sd2_tokenizer(out: Path) -> None:
    """SD2's CLIP tokenizer, derived from OpenAI CLIP's BPE merges the way CLIP builds it: the 256
    byte characters, the same with ``</w>``, one token per merge (the first 48894), then the start
    and end tokens: 49408 tokens. Padding ``!`` and 77 positions as SD2's tokenizer_config says."""
    import gzip

    from transformers import CLIPTokenizer

    from .sd2_config import SD2_TOKENIZER
    from .tiny import _byte_characters

    lines = gzip.open(BPE, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1:SD2_TOKENIZER["vocab_size"] - 256 * 2 - 2 + 1]
    chars = _byte_characters()
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False),
                                    encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"),
                              model_max_length=SD2_TOKENIZER["model_max_length"], pad_token=SD2_TOKENIZER["pad_token"])
    tokenizer.save_pretrained(out)
