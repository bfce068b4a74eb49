"""Text-prompted selection: Grounding DINO boxes then SAM masks, as ranked candidates."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.perception.detect import Candidate, normalise_query, select_objects


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from engine.tiny_models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("perception-detect"), roles=["detector", "sam"])


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((48, 80, 3)).astype(np.float32)


def test_candidate_contract(models, image):
    candidates = select_objects(image, "the red car", models_dir=models, max_candidates=3, box_threshold=0.0)
    assert 1 <= len(candidates) <= 3
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)
    for c in candidates:
        assert isinstance(c, Candidate)
        assert c.mask.shape == (48, 80) and c.mask.dtype == bool and c.mask.any()
        assert 0.0 <= c.score <= 1.0 and isinstance(c.label, str) and c.label
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 48
        ys, xs = np.nonzero(c.mask)  # the mask stays within its box (one pixel of slack)
        assert xs.min() >= int(x0) - 1 and xs.max() <= np.ceil(x1) and ys.min() >= int(y0) - 1


def test_overrides_pick_the_model_directories(models, image):
    a = select_objects(image, "a cat", overrides={"detector": str(models / "detector"), "sam": str(models / "sam")},
                       box_threshold=0.0)
    b = select_objects(image, "a cat", models_dir=models, box_threshold=0.0)
    assert [c.box for c in a] == [c.box for c in b]


def test_nothing_matching_is_a_clear_error(models, image):
    with pytest.raises(InputError, match=r"no object matching 'the blue vase' found"):
        select_objects(image, "the blue vase", models_dir=models, box_threshold=1.0)


@pytest.mark.parametrize("query", ["", "   ", "...", None, 3])
def test_bad_query_refused(query):
    with pytest.raises(InputError, match="object query"):
        normalise_query(query)


def test_query_normalised():
    assert normalise_query("  The   Red Car ") == "the red car."
    assert normalise_query("a cat.") == "a cat."
