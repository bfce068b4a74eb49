"""The model registry: every role, pinned revisions, resolution order, the offline missing-model
message, explicit downloads refused offline, verification of the Hugging Face cache layout."""
from __future__ import annotations

import hashlib
import os
import re
import shutil

import pytest

from engine import registry
from engine.errors import EngineError, InputError, ModelNotFoundError

ROLES = {"diffusion", "depth", "depth-anything", "detector", "sam", "sam-vit-h", "inpaint"}


@pytest.fixture
def empty_offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf" / "hub"


def test_registry_lists_every_role_with_its_facts():
    assert ROLES <= set(registry.REGISTRY)
    for role, s in registry.REGISTRY.items():
        assert s.role == role
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", s.default_id), s.default_id
        assert s.revision == "main" or re.fullmatch(r"[0-9a-f]{40}", s.revision), s.revision
        assert s.download_size and s.licence and s.description and s.loader
        assert s.use in ("default", "option")
        assert s.required, f"{role}: no required files to verify"
    assert {s.role for s in registry.REGISTRY.values() if s.use == "default"} == {
        "diffusion", "depth", "detector", "sam"}
    table = registry.model_table_markdown()
    for role in registry.REGISTRY:
        assert f"`{role}`" in table


def test_unknown_role_is_named():
    with pytest.raises(ModelNotFoundError, match="unknown model role 'nope'"):
        registry.spec("nope")


def test_missing_model_message_offline(empty_offline_cache, tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve("depth", None, tmp_path / "models")
    msg = str(info.value)
    assert "'depth'" in msg and "Intel/zoedepth-nyu-kitti" in msg
    assert str(tmp_path / "models" / "depth") in msg and str(empty_offline_cache) in msg
    assert "\n" not in msg
    # the library names no front end's command or options; each front end words the fix
    assert "--" not in msg and "python -m" not in msg
    assert (info.value.role, info.value.override) == ("depth", None)


def test_the_command_line_says_how_to_fetch_missing_weights(empty_offline_cache, capsys):
    from engine.cli import report_error

    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve("depth", "org/other")
    assert report_error(info.value, verbose=False) == 2
    err = capsys.readouterr().err
    assert "`python -m engine models download depth --id org/other`" in err and "--depth-model PATH" in err


def test_download_refuses_a_bad_id_naming_the_value(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(InputError, match=r"model id for role 'depth' 'not an id': expected a Hugging Face id") as info:
        registry.download("depth", "not an id")
    assert "--" not in str(info.value)
    with pytest.raises(InputError, match=r"^--id 'x/y/z': expected"):  # the CLI names its option
        registry.check_hub_id("x/y/z", "--id")


def test_override_and_models_dir_order(tmp_path, empty_offline_cache):
    (tmp_path / "models" / "sam").mkdir(parents=True)
    (tmp_path / "models" / "sam-vit-h").mkdir(parents=True)
    local = tmp_path / "mine"
    local.mkdir()
    assert registry.resolve("sam", None, tmp_path / "models") == tmp_path / "models" / "sam"
    assert registry.resolve("sam", str(local), tmp_path / "models") == local
    # a role of the same family names the other variant
    assert registry.resolve("sam", "sam-vit-h", tmp_path / "models") == tmp_path / "models" / "sam-vit-h"
    with pytest.raises(ModelNotFoundError, match="not a directory"):
        registry.resolve("sam", str(tmp_path / "missing" / "dir"))
    with pytest.raises(ModelNotFoundError, match="org/other@main"):
        registry.resolve("depth", "org/other")


def _fake_snapshot(cache, repo, revision, files):
    """The Hugging Face cache layout: snapshots/<rev>/<file> -> ../../blobs/<content hash>."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    for name, data in files.items():
        if len(data) > 100:
            blob = hashlib.sha256(data).hexdigest()
        else:
            blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        (root / "blobs").mkdir(exist_ok=True)
        (root / "blobs" / blob).write_bytes(data)
        link = root / "snapshots" / revision / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(root / "blobs" / blob, link.parent), link)
    return root / "snapshots" / revision


def test_resolve_and_verify_hf_cache(empty_offline_cache):
    s = registry.spec("depth-anything")
    snap = _fake_snapshot(empty_offline_cache, s.default_id, s.revision, {
        "config.json": b"{}", "preprocessor_config.json": b"{}", "model.safetensors": b"x" * 1000})
    assert registry.resolve("depth-anything") == snap
    result = registry.verify("depth-anything")
    assert result.ok and result.checked_files == 3, result.problems
    # corrupt the large blob: verify names the file
    blob = os.path.realpath(snap / "model.safetensors")
    with open(blob, "r+b") as f:
        f.write(b"y")
    result = registry.verify("depth-anything")
    assert not result.ok and "model.safetensors" in result.problems[0]


def test_snapshot_without_required_files_is_not_resolved(empty_offline_cache):
    s = registry.spec("detector")
    _fake_snapshot(empty_offline_cache, s.default_id, s.revision, {"config.json": b"{}"})
    with pytest.raises(ModelNotFoundError, match="'detector'.*not available offline") as info:
        registry.resolve("detector")
    assert info.value.role == "detector"


def test_sam_release_md5_checked(empty_offline_cache):
    s = registry.spec("sam")
    snap = _fake_snapshot(empty_offline_cache, s.default_id, s.revision,
                          {"checkpoints/sam_vit_b_01ec64.pth": b"z" * 200})
    result = registry.verify("sam")
    assert not result.ok and any("md5" in p for p in result.problems)
    assert registry.resolve("sam") == snap


def test_download_refused_offline(empty_offline_cache):
    with pytest.raises(EngineError, match="HF_HUB_OFFLINE"):
        registry.download("sam")


def test_pickle_weights_are_refused_naming_the_file(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text("{}")
    (tmp_path / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04junk")
    (tmp_path / "extras").mkdir()  # not a component folder: never loaded, not refused
    (tmp_path / "extras" / "padding.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="diffusion_pytorch_model.bin.*pickle"):
        registry.check_weights("diffusion", tmp_path)
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    registry.check_weights("diffusion", tmp_path)  # safetensors beside it: the pickle is never opened
    registry.check_weights("sam", tmp_path)  # the documented .pth exception


def test_content_fingerprint_survives_a_copy_and_sees_a_change(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a = tmp_path / "a"
    (a / "unet").mkdir(parents=True)
    (a / "unet" / "w.safetensors").write_bytes(b"weights")
    (a / "config.json").write_text("{}")
    fa = registry.content_fingerprint(a)
    shutil.copytree(a, tmp_path / "b")
    os.utime(tmp_path / "b" / "unet" / "w.safetensors", (1, 1))
    assert registry.content_fingerprint(tmp_path / "b") == fa
    (tmp_path / "b" / "unet" / "w.safetensors").write_bytes(b"other!!")
    assert registry.content_fingerprint(tmp_path / "b") != fa
    assert (tmp_path / "cache" / "diffusion-handles" / "file-digests.json").is_file()


def test_sd2_roles_try_the_mirror_then_the_withdrawn_official_id():
    for role, name in (("diffusion", "stable-diffusion-2-depth"), ("inpaint", "stable-diffusion-2-inpainting")):
        assert [repo for repo, _ in registry.sources(role)] == [f"sd2-community/{name}", f"stabilityai/{name}"]
        assert "Open RAIL++-M" in registry.spec(role).licence and registry.spec(role).single_file
    assert registry.sources("depth") == [("Intel/zoedepth-nyu-kitti", "main")]


def test_any_cached_snapshot_of_any_source_is_found_offline(empty_offline_cache):
    """An old download of the withdrawn official repository, at a commit other than the pin and
    without refs/main (a cache another tool filled), is found; the mirror wins once it is there."""
    files = {"model_index.json": b"{}", "unet/config.json": b"{}", "vae/config.json": b"{}",
             "unet/diffusion_pytorch_model.fp16.safetensors": b"w" * 200}
    official, pin = registry.sources("inpaint")[1]
    old = _fake_snapshot(empty_offline_cache, official, "a" * 40, files)
    (old.parent.parent / "refs" / "main").unlink()
    assert old.name != pin
    found = registry.resolve_source("inpaint")
    assert (found.path, found.kind, found.source, found.revision) == (old, "hub", official, "a" * 40)
    mirror = _fake_snapshot(empty_offline_cache, registry.sources("inpaint")[0][0], "b" * 40, files)
    assert registry.resolve("inpaint") == mirror
    incomplete = {"model_index.json": b"{}"}  # a snapshot without the weights is never used
    _fake_snapshot(empty_offline_cache, "sd2-community/stable-diffusion-2-depth", "c" * 40, incomplete)
    with pytest.raises(ModelNotFoundError, match="sd2-community/stable-diffusion-2-depth@main, "
                                                 "stabilityai/stable-diffusion-2-depth@main.*512-depth-ema"):
        registry.resolve("diffusion")
