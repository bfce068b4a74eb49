"""The per-photo cache: exact round trip, tampering and mismatches rejected, reuse by prepare."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import cache
from engine.errors import InputError
from engine.pipeline import Engine
from engine.prepared import Prepared
from engine.settings import EditSettings



def synthetic_scene(size=32):
    mask = np.zeros((size, size), bool)
    mask[10:20, 8:16] = True
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.3 + 0.4 * xx, 0.4 + 0.2 * yy, 0.5 + 0.2 * np.sin(8 * xx)], -1).astype(np.float32)
    image[mask] = [0.9, 0.2, 0.1]
    depth = np.where(mask, 1.5, 3.0 - 0.5 * yy).astype(np.float32)
    return image, depth, mask

SETTINGS = EditSettings(resolution=32, steps=4, guided_steps=3, inversion="negative-prompt")


@pytest.fixture(scope="module")
def engine(tiny_models_dir):
    return Engine(models_dir=tiny_models_dir, device="cpu", dtype="fp32", settings=SETTINGS)


@pytest.fixture(scope="module")
def prepared(engine):
    image, depth, mask = synthetic_scene()
    return engine.prepare(image, "a red box", depth, mask)


def _same(a: Prepared, b: Prepared):
    for name in ("image", "depth", "object_mask", "reconstruction"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for name in ("cond_embedding", "null_embeddings", "noise", "latents", "reconstruction_latents"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.references.keys() == b.references.keys()
    for k in a.references:
        assert a.references[k].dtype == torch.float16
        assert torch.equal(a.references[k], b.references[k])
    assert (a.prompt, a.key, a.settings, a.model_id, a.revision) == (b.prompt, b.key, b.settings, b.model_id, b.revision)


def test_round_trip_is_exact(prepared, tmp_path):
    prepared.save(tmp_path / "p")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["prepared.json", "prepared.safetensors"]
    _same(prepared, Prepared.load(tmp_path / "p"))


def test_tampered_cache_is_rejected(prepared, tmp_path):
    d = tmp_path / "p"
    prepared.save(d)
    data = bytearray((d / cache.TENSORS).read_bytes())
    data[-10] ^= 0xFF
    (d / cache.TENSORS).write_bytes(bytes(data))
    with pytest.raises(InputError, match="checksum"):
        Prepared.load(d)
    prepared.save(d)
    (d / cache.META).write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        Prepared.load(d)
    prepared.save(d)
    meta = json.loads((d / cache.META).read_text())
    for edit in ({"prompt": "another prompt"}, {"settings": {**meta["settings"], "steps": "4"}},
                 {"size": [1, 2]}):  # a hand edit of the JSON is caught like a modified tensor file
        (d / cache.META).write_text(json.dumps({**meta, **edit}))
        with pytest.raises(InputError, match="integrity"):
            Prepared.load(d)
    prepared.save(d)
    meta = json.loads((d / cache.META).read_text())
    meta["version"] = 999
    (d / cache.META).write_text(json.dumps(meta))
    with pytest.raises(InputError, match="version"):
        Prepared.load(d)
    with pytest.raises(InputError, match="not a prepared photo"):
        Prepared.load(tmp_path / "nothing")


def test_key_mismatch_rejected_and_prepare_rebuilds(engine, prepared, tmp_path):
    d = tmp_path / "p"
    prepared.save(d)
    with pytest.raises(InputError, match="key mismatch"):
        Prepared.load(d, expected_key="0" * 64)
    image, depth, mask = synthetic_scene()
    # same inputs: the cache is used (no UNet evaluation)
    before = dict(engine.counts)
    again = engine.prepare(image, "a red box", depth, mask, cache_dir=d)
    assert engine.counts == before
    _same(prepared, again)
    # other prompt: the key differs, prepare rebuilds and overwrites the cache
    other = engine.prepare(image, "a blue box", depth, mask, cache_dir=d)
    assert other.key != prepared.key and engine.counts["unet_forward"] > before["unet_forward"]
    assert Prepared.load(d).key == other.key
    # a corrupt cache is rebuilt, not trusted
    (d / cache.TENSORS).write_bytes(b"garbage")
    rebuilt = engine.prepare(image, "a blue box", depth, mask, cache_dir=d)
    assert rebuilt.key == other.key and Prepared.load(d).key == other.key


def test_edit_from_loaded_cache_equals_edit_from_memory(engine, prepared, tmp_path):
    prepared.save(tmp_path / "p")
    T = np.eye(4)
    T[0, 3] = 0.2
    a = engine.edit(prepared, [T])[0].image
    b = engine.edit(Prepared.load(tmp_path / "p"), [T])[0].image
    np.testing.assert_array_equal(a, b)
