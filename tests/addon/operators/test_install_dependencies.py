"""Install Dependencies for real: the operator's own pip run, offline from a folder of wheels built
here with the real packaging tools (standing in for the multi-GB requirements), into the test's
temporary extension user folder."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module  # noqa: E402

pytestmark = pytest.mark.slow


def _wheel(tmp_path, version, value):
    """Build dh_tiny_dep-<version>-py3-none-any.whl with pip and setuptools (no network)."""
    src = tmp_path / f"src-{version}"
    (src / "dh_tiny_dep").mkdir(parents=True)
    (src / "dh_tiny_dep" / "__init__.py").write_text(f"VALUE = {value}\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "dh-tiny-dep"\nversion = "{version}"\n\n'
        '[tool.setuptools]\npackages = ["dh_tiny_dep"]\n')
    wheels = tmp_path / "wheels"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "--disable-pip-version-check", "-w", str(wheels), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return wheels


@pytest.fixture
def installer(addon, monkeypatch):
    deps = addon_module("session.deps")
    addon_paths = addon_module("blender.addon")
    prefs = addon_paths.preferences()
    target = addon_paths.user_site_packages(create=True)
    system = bpy.context.preferences.system
    online = system.use_online_access
    yield deps, prefs, Path(target)
    system.use_online_access = online
    prefs.wheels_dir = ""
    for name in os.listdir(target):
        if name.startswith("dh_tiny_dep"):
            shutil.rmtree(os.path.join(target, name))
    sys.modules.pop("dh_tiny_dep", None)
    if target in sys.path:
        sys.path.remove(target)


def test_install_from_local_wheels_then_importable(installer, tmp_path, monkeypatch):
    deps, prefs, target = installer
    assert str(target).startswith(os.environ["BLENDER_USER_EXTENSIONS"])  # the test's own user folder
    wheels = _wheel(tmp_path, "0.1", 1)
    _wheel(tmp_path, "0.2", 2)
    monkeypatch.setattr(deps, "REQUIREMENTS", ("dh-tiny-dep==0.1",))
    bpy.context.preferences.system.use_online_access = False  # a local folder needs no network
    prefs.wheels_dir = str(wheels)
    assert bpy.ops.dh.install_dependencies.poll()
    assert bpy.ops.dh.install_dependencies() == {"FINISHED"}
    import dh_tiny_dep

    assert dh_tiny_dep.VALUE == 1 and Path(dh_tiny_dep.__file__).parent.parent == target
    assert str(target) in sys.path

    # a wheel missing from the folder: one clear line, and the earlier install stays as it was
    monkeypatch.setattr(deps, "REQUIREMENTS", ("dh-tiny-dep==0.2", "dh-missing-thing==1.0"))
    with pytest.raises(RuntimeError) as failure:
        bpy.ops.dh.install_dependencies()
    message = str(failure.value).strip()
    assert "dh-missing-thing" in message and "\n" not in message and "Traceback" not in message
    assert sorted(p.name for p in target.iterdir() if p.name.startswith("dh_tiny_dep")) == [
        "dh_tiny_dep", "dh_tiny_dep-0.1.dist-info"]
    assert (target / "dh_tiny_dep" / "__init__.py").read_text() == "VALUE = 1\n"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".staging-")]

    # the next version replaces the old one whole
    monkeypatch.setattr(deps, "REQUIREMENTS", ("dh-tiny-dep==0.2",))
    assert bpy.ops.dh.install_dependencies() == {"FINISHED"}
    assert sorted(p.name for p in target.iterdir() if p.name.startswith("dh_tiny_dep")) == [
        "dh_tiny_dep", "dh_tiny_dep-0.2.dist-info"]


def test_without_online_access_or_wheels_it_refuses(installer, monkeypatch):
    deps, prefs, target = installer
    monkeypatch.setattr(deps, "REQUIREMENTS", ("dh-tiny-dep==0.1",))
    bpy.context.preferences.system.use_online_access = False
    prefs.wheels_dir = ""
    assert not bpy.ops.dh.install_dependencies.poll()
    with pytest.raises(RuntimeError, match="Online access is disabled"):
        bpy.ops.dh.install_dependencies()
    prefs.wheels_dir = str(target.parent / "no-such-wheels")
    with pytest.raises(RuntimeError, match="wheels folder .* not found"):
        bpy.ops.dh.install_dependencies()
    assert not [p for p in target.iterdir() if p.name.startswith("dh_tiny_dep")]
