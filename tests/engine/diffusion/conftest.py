"""Fixtures of the engine.diffusion tests."""
from __future__ import annotations

import pytest

from engine.diffusion.loading import load_diffusion
from engine.settings import RuntimeOptions


@pytest.fixture(scope="module")
def models(tiny_models_dir):
    """The tiny random-weight diffusion model, loaded once per test module (CPU, fp32)."""
    return load_diffusion(tiny_models_dir, runtime=RuntimeOptions(device="cpu", dtype="fp32"))
