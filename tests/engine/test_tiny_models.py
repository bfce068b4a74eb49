"""engine.tiny_models: every role's tiny model written as DIR/<role>/ and found there by the registry.

The writers themselves: tests/engine/diffusion/test_tiny.py and tests/engine/perception/test_tiny.py;
the `tiny-models` command: tests/engine/cli/test_tiny_models.py."""
from __future__ import annotations

import pytest

from engine import registry
from engine.tiny_models import WRITERS, write_tiny_models


def test_every_writer_is_a_registry_role():
    assert set(WRITERS) <= set(registry.REGISTRY)
    # every role family has a tiny model (sam-vit-h is the same format as sam)
    for role in registry.REGISTRY:
        assert role in WRITERS or set(registry.ROLE_FAMILIES.get(role, ())) & set(WRITERS), role


def test_all_roles_resolve_through_the_registry_and_pass_the_weights_check(tiny_models_dir):
    assert sorted(p.name for p in tiny_models_dir.iterdir()) == sorted(WRITERS)
    for role in WRITERS:
        path = registry.resolve(role, None, tiny_models_dir)
        assert path == tiny_models_dir / role
        registry.check_weights(role, path)
        pickles = [p for p in path.rglob("*") if p.suffix.lower() in registry.PICKLE_SUFFIXES]
        assert not pickles or role in registry.PICKLE_ALLOWED_ROLES, pickles


def test_only_the_asked_roles_are_written_and_the_seed_is_passed_on(tmp_path):
    from safetensors.torch import load_file

    out = write_tiny_models(tmp_path / "m0", roles=["depth-anything"])
    assert out == tmp_path / "m0" and [p.name for p in out.iterdir()] == ["depth-anything"]
    again = write_tiny_models(tmp_path / "m0b", roles=["depth-anything"], seed=0)
    other = write_tiny_models(tmp_path / "m1", roles=["depth-anything"], seed=1)
    a, b, c = (load_file(str(d / "depth-anything" / "model.safetensors")) for d in (out, again, other))
    import torch

    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_an_unknown_role_is_refused_before_writing(tmp_path):
    with pytest.raises(KeyError):
        write_tiny_models(tmp_path / "m", roles=["no-such-role"])
    assert list((tmp_path / "m").iterdir()) == []


def test_writing_into_an_existing_folder_overwrites_with_the_same_model(tmp_path):
    out = write_tiny_models(tmp_path / "m", roles=["sam"])
    first = {p.name: p.read_bytes() for p in (out / "sam").iterdir()}
    write_tiny_models(out, roles=["sam"])
    assert {p.name: p.read_bytes() for p in (out / "sam").iterdir()} == first
