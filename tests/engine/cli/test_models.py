"""`python -m engine models list | download | verify` (in process; nothing is downloaded)."""
from __future__ import annotations

import json

import pytest

from engine import registry
from engine.cli import main


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from engine.tiny_models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("cli-models"), roles=["sam"])


def test_list_shows_every_role(offline, models, capsys):
    assert main(["models", "list", "--models", str(models)]) == 0
    out = capsys.readouterr().out
    for s in registry.REGISTRY.values():
        assert s.role in out and s.default_id in out and s.licence in out and s.download_size in out
    assert f"present: {models / 'sam'}" in out
    assert "python -m engine models download diffusion depth detector" in out
    assert "HF_HUB_OFFLINE" in out


def test_list_json(offline, capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["role"] for r in rows] == list(registry.REGISTRY)
    assert not any(r["present"] for r in rows)


def test_download_offline_is_one_clear_error(offline, capsys):
    assert main(["models", "download", "sam"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: cannot download the 'sam' model: HF_HUB_OFFLINE")


def test_download_unknown_role(offline, capsys):
    assert main(["models", "download", "unicorn"]) == 2
    assert "unknown model role(s) unicorn" in capsys.readouterr().err


def test_verify(offline, models, capsys):
    assert main(["models", "verify", "sam", "--models", str(models)]) == 0
    assert "sam: ok" in capsys.readouterr().out
    assert main(["models", "verify", "--models", str(models), "--no-hash"]) == 1  # defaults missing
    out = capsys.readouterr().out
    assert "depth: FAILED" in out and "models download depth" in out
    assert "sam-vit-h: not downloaded (option)" in out
