"""session/deps.py: which Python packages are missing, the one-line message saying how to install
them, and the pip command (from the index, or offline from a wheels folder)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module  # noqa: E402


@pytest.fixture
def deps(addon):
    return addon_module("session.deps")


def test_missing_modules_and_require(deps):
    assert deps.missing_modules(("numpy", "dh_no_such_module")) == ["dh_no_such_module"]
    assert deps.missing_modules(("numpy",)) == []
    deps.require(("numpy", "PIL"))  # present: no error
    errors = addon_module("session.errors")
    with pytest.raises(errors.AddonError) as caught:
        deps.require(("dh_no_such_module",))
    message = str(caught.value)
    assert "dh_no_such_module" in message and "Install Dependencies" in message and "\n" not in message
    assert set(deps.PREVIEW_MODULES) <= set(deps.MODULES)


def test_pip_command_online_and_offline(deps, tmp_path):
    online = deps.pip_install_command(str(tmp_path / "site"))
    assert online[:3] == [sys.executable, "-m", "pip"] and "--no-index" not in online
    assert online[online.index("--target") + 1] == str(tmp_path / "site")
    assert online[-len(deps.REQUIREMENTS):] == list(deps.REQUIREMENTS)
    offline = deps.pip_install_command(str(tmp_path / "site"), str(tmp_path / "wheels"), ["a==1"])
    assert offline[offline.index("--find-links") + 1] == str(tmp_path / "wheels") and "--no-index" in offline
    assert offline[-1] == "a==1"
