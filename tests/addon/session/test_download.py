"""session/download.py: what Download Models fetches (the registry's default roles), byte
progress, cancelling, and the registry as the one download path (no network here)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module  # noqa: E402


@pytest.fixture
def download(addon):
    return addon_module("session.download")


def test_plan_covers_the_default_roles_and_honours_overrides(download, tmp_path):
    registry = addon_module("engine.registry")
    defaults = [role for role, spec in registry.REGISTRY.items() if spec.use == "default"]
    assert download.download_plan({}) == [(role, None) for role in defaults]
    plan = dict(download.download_plan({"depth": str(tmp_path), "sam": "sam-vit-h", "diffusion": "org/model@v1"}))
    assert "depth" not in plan  # a local folder needs nothing
    assert plan["sam-vit-h"] is None and "sam" not in plan  # an alias role is fetched as itself
    assert plan["diffusion"] == "org/model@v1"


def test_download_goes_through_the_registry(download, monkeypatch):
    """With HF_HUB_OFFLINE set the registry refuses: the refusal reaches the job, nothing fetched."""
    errors = addon_module("engine.errors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    stages = []
    with pytest.raises(errors.InputError, match="HF_HUB_OFFLINE"):
        download.download_models([("depth", None), ("sam", None)], lambda *s: stages.append(s), lambda: False)
    assert stages == [("depth (1/2)", 0, 1)]


def test_cancel_before_and_during_a_transfer(download):
    errors = addon_module("engine.errors")
    with pytest.raises(errors.CancelledError, match="finished files stay in the cache"):
        download.download_models([("depth", None)], lambda *s: pytest.fail("started"), lambda: True)
    stages, cancel = [], []
    bar = download.progress_tqdm(lambda *s: stages.append(s), lambda: bool(cancel), "depth (1/1)")(
        total=2048, unit="B")
    bar.update(1024)
    assert stages[-1][1:] == (1024, 2048) and stages[-1][0].startswith("depth (1/1): ") and "B of " in stages[-1][0]
    cancel.append(True)
    with pytest.raises(errors.CancelledError):
        bar.update(1024)
    bar.close()


def test_missing_weights_report_names_the_add_on_button_not_the_command_line(download, tmp_path, monkeypatch):
    registry = addon_module("engine.registry")
    errors = addon_module("engine.errors")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(errors.ModelNotFoundError) as info:
        registry.resolve("depth", None, tmp_path / "models")
    report = addon_module("session.errors").user_message(info.value)
    assert report.startswith(str(info.value)) and "'Download Models'" in report
    assert "--" not in report and "python -m" not in report

