"""Shared fixtures. Engine tests never import bpy; add-on tests live in tests/addon/."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A models directory with every role's tiny random-weight model, written once per session."""
    from engine.tiny_models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def pickle_only_models(tiny_models_dir, tmp_path) -> Path:
    """A models folder whose diffusion UNet has only a pickle weights file (no safetensors):
    every path must refuse it before unpickling anything (docs/design.md section 5)."""
    import shutil

    models = tmp_path / "pickle-models"
    shutil.copytree(tiny_models_dir / "diffusion", models / "diffusion")
    unet = models / "diffusion" / "unet"
    for f in unet.glob("*.safetensors"):
        f.unlink()
    (unet / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    return models
