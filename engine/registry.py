"""The model registry: every model the project uses, by role, in one place (DESIGN.md section 5).

A role resolves to a local directory in this order:
1. an explicit override: a local directory, or a Hugging Face id (``org/name`` or ``org/name@rev``);
2. ``<models_dir>/<role>/`` when a models directory is given (the layout ``engine tiny-models``
   writes and ``../shared/models/toy-depth`` uses);
3. the role's default id at its pinned revision in the Hugging Face cache (offline lookup; honours
   HF_HOME / HF_HUB_CACHE). Nothing is downloaded here: downloads are explicit
   (``python -m engine models download``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelSpec:
    role: str
    default_id: str
    revision: str  # pinned commit (or "main" where no pin is recorded yet)
    download_size: str  # approximate, for the README table and the download prompt
    licence: str
    description: str
    # Files to fetch from the repo (None = the whole snapshot, filtered by allow_patterns).
    allow_patterns: tuple[str, ...] | None = None


REGISTRY: dict[str, ModelSpec] = {
    spec.role: spec
    for spec in (
        ModelSpec(
            "diffusion",
            "stabilityai/stable-diffusion-2-depth",
            "main",
            "about 2.6 GB (fp16 safetensors: unet, vae, text encoder)",
            "openrail++",
            "depth-to-image latent diffusion (UNet with 4 latent + 1 depth input channels)",
            allow_patterns=("*.json", "*.txt", "unet/*.fp16.safetensors", "vae/*.fp16.safetensors",
                            "text_encoder/*.fp16.safetensors", "tokenizer/*"),
        ),
    )
}


def spec(role: str) -> ModelSpec:
    try:
        return REGISTRY[role]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model role {role!r}; known roles: {', '.join(sorted(REGISTRY))}") from None


def _split_id(model_id: str, default_revision: str) -> tuple[str, str]:
    if "@" in model_id:
        repo, rev = model_id.split("@", 1)
        return repo, rev
    return model_id, default_revision


def resolve(role: str, override: str | os.PathLike | None = None,
            models_dir: str | os.PathLike | None = None) -> Path:
    """Local directory holding the model for ``role`` (see module docstring for the order)."""
    s = spec(role)
    looked: list[str] = []
    if override:
        p = Path(override).expanduser()
        if p.is_dir():
            return p
        if p.exists() or os.sep in str(override) and not _looks_like_hub_id(str(override)):
            raise ModelNotFoundError(f"model override for role {role!r}: {str(override)!r} is not a directory")
        repo, rev = _split_id(str(override), "main")
        found = _from_hf_cache(repo, rev, s.allow_patterns if repo == s.default_id else None)
        if found:
            return found
        looked.append(f"Hugging Face cache for {repo}@{rev}")
        raise ModelNotFoundError(_missing_message(role, repo, looked))
    if models_dir:
        p = Path(models_dir).expanduser() / role
        if p.is_dir():
            return p
        looked.append(str(p))
    found = _from_hf_cache(s.default_id, s.revision, s.allow_patterns)
    if found:
        return found
    looked.append(f"Hugging Face cache ({hf_cache_dir()}) for {s.default_id}@{s.revision}")
    raise ModelNotFoundError(_missing_message(role, s.default_id, looked))


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("@", 1)[0].split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _from_hf_cache(repo: str, revision: str, allow_patterns) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, local_files_only=True,
                                      allow_patterns=list(allow_patterns) if allow_patterns else None))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def _missing_message(role: str, model_id: str, looked: list[str]) -> str:
    return (f"model for role {role!r} ({model_id}) is not available offline; looked in: "
            f"{'; '.join(looked)}. Download it with `python -m engine models download {role}` "
            f"(or pass a local directory with --models DIR / --{role}-model PATH)")
