"""engine.diffusion.conditioning: prompts, the depth condition and the working size."""
from __future__ import annotations

import numpy as np
import pytest

from engine.diffusion import conditioning as C
from engine.errors import InputError


def test_prompt_too_long_is_a_clear_error(models):
    with pytest.raises(InputError, match="prompt: .* tokens"):
        C.encode_prompt(models, "word " * 80)
    with pytest.raises(InputError, match="prompt"):
        C.encode_prompt(models, "   ")
    assert C.encode_prompt(models, "a box").shape == (1, 77, 32)


def test_depth_condition_is_normalised_disparity():
    depth = np.linspace(1.0, 4.0, 32 * 24, dtype=np.float32).reshape(32, 24)
    d = C.depth_condition(depth, (16, 12))
    assert d.shape == (1, 1, 16, 12)
    assert d.min().item() == pytest.approx(-1.0) and d.max().item() == pytest.approx(1.0)
    assert d[0, 0, 0, 0] > d[0, 0, -1, -1]  # near = large disparity = +1
    with pytest.raises(InputError):
        C.depth_condition(np.zeros((4, 4)), (2, 2))


def test_working_size_keeps_aspect_and_multiples():
    assert C.working_size(480, 640, 512, 64) == (384, 512)
    assert C.working_size(1000, 500, 64, 16) == (64, 32)
