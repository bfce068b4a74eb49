"""Install Dependencies for real: the operator's own pip run, offline from a folder of tiny wheels
written here (standing in for the multi-GB requirements), into the test's temporary extension user
folder or the Python Packages folder; and what the preferences' box says about it."""
import logging
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module  # noqa: E402
from tiny_wheels import make_wheel  # noqa: E402
from ui_fakes import Recorder  # noqa: E402

pytestmark = pytest.mark.slow


def _wheel(tmp_path, version, value):
    """dh_tiny_dep-<version>-py3-none-any.whl in tmp_path/wheels (a real wheel file, tiny)."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "dh-tiny-dep", version, files={"dh_tiny_dep/__init__.py": f"VALUE = {value}\n"})
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
    prefs.python_path = ""
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
    assert "no binary wheel of dh-missing-thing==1.0" in message and str(wheels) in message
    assert "\n" not in message and "Traceback" not in message
    assert sorted(p.name for p in target.iterdir() if p.name.startswith("dh_tiny_dep")) == [
        "dh_tiny_dep", "dh_tiny_dep-0.1.dist-info"]
    assert (target / "dh_tiny_dep" / "__init__.py").read_text() == "VALUE = 1\n"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".dh-")]

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


class _Prefs:
    """The real preferences drawn into a recording layout."""

    def __init__(self, real, layout):
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "layout", layout)

    def __getattr__(self, name):
        return getattr(self._real, name)


def _dependency_box(prefs, monkeypatch, deps):
    """What the preferences' Dependencies box shows (the texts up to the Models box)."""
    monkeypatch.setattr(deps, "missing_modules", lambda names=None: ["torch"])
    layout = Recorder()
    addon_module("panels.preferences").DH_AddonPreferences.draw(_Prefs(prefs, layout), bpy.context)
    monkeypatch.undo()
    texts = layout.texts()
    return texts[:texts.index("Models")]


def test_the_box_says_why_install_is_disabled(installer, monkeypatch, tmp_path):
    deps, prefs, target = installer
    bpy.context.preferences.system.use_online_access = False
    box = _dependency_box(prefs, monkeypatch, deps)
    assert "Online access is disabled (Preferences > System > Network): allow it, or set a local Wheels Folder" \
        in box
    assert f"Installs into: {target}" in box
    prefs.wheels_dir = str(tmp_path)  # a local folder: enabled, nothing to explain
    assert not any("Online access" in text for text in _dependency_box(prefs, monkeypatch, deps))
    assert bpy.ops.dh.install_dependencies.poll()
    prefs.wheels_dir = ""
    bpy.context.preferences.system.use_online_access = True
    assert not any("Online access" in text for text in _dependency_box(prefs, monkeypatch, deps))


def test_python_packages_folder_missing_is_said_then_installed_into(installer, tmp_path, monkeypatch, caplog):
    """A short Python Packages folder (where the extension's own is too deep for Windows) that does
    not exist yet: the box and the console say so; Install Dependencies creates it and installs there."""
    deps, prefs, target = installer
    short = tmp_path / "dh-packages"
    with caplog.at_level(logging.WARNING):
        prefs.python_path = str(short)  # its update puts the folders on sys.path
    assert any(f"Python Packages folder {short} does not exist" in r.getMessage() for r in caplog.records)
    box = _dependency_box(prefs, monkeypatch, deps)
    assert f"Python Packages folder not found: {short} (Install Dependencies creates it)" in box
    assert f"Installs into: {short}" in box and str(short) not in sys.path

    prefs.wheels_dir = str(_wheel(tmp_path, "0.1", 7))
    monkeypatch.setattr(deps, "REQUIREMENTS", ("dh-tiny-dep==0.1",))
    try:
        assert bpy.ops.dh.install_dependencies() == {"FINISHED"}
        import dh_tiny_dep

        assert dh_tiny_dep.VALUE == 7 and Path(dh_tiny_dep.__file__).parent.parent == short
        assert not [p for p in target.iterdir() if p.name.startswith("dh_tiny_dep")]  # not the extension's
        assert not any("not found" in text for text in _dependency_box(prefs, monkeypatch, deps))
    finally:
        if str(short) in sys.path:
            sys.path.remove(str(short))


def _installed(folder, name, tag):
    """An installed distribution as pip leaves it: the package and its dist-info with the wheel's tag."""
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / f"{name}-1.0.dist-info").mkdir()
    (folder / f"{name}-1.0.dist-info" / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: {tag}\n")


def test_python_packages_for_another_python_is_said_and_left_off(installer, tmp_path, monkeypatch, caplog):
    """A Python Packages folder made for Blender 5.0's Python 3.11 in a Blender on 3.13 (or the other
    way round): its compiled modules cannot load, so it stays off sys.path and the box says why."""
    deps, prefs, target = installer
    here = "%d%d" % sys.version_info[:2]
    other = "311" if here != "311" else "313"
    folder = tmp_path / "packages"
    _installed(folder, "dh_native", f"cp{other}-cp{other}-win_amd64")
    _installed(folder, "dh_abi3", "cp38-abi3-win_amd64")  # abi3 and pure wheels serve any Python
    _installed(folder, "dh_pure", "py3-none-any")
    assert deps.built_for(str(folder)) == {f"3.{other[1:]}"}
    with caplog.at_level(logging.WARNING):
        prefs.python_path = str(folder)
    assert any(f"built for Python 3.{other[1:]}" in r.getMessage() for r in caplog.records)
    assert str(folder) not in sys.path
    box = _dependency_box(prefs, monkeypatch, deps)
    assert any(f"holds packages for Python 3.{other[1:]}" in text for text in box)
    _installed(folder, "dh_native_here", f"cp{here}-cp{here}-win_amd64")  # installed again for this Python
    try:
        prefs.python_path = str(folder)
        assert str(folder) in sys.path
        assert not any("holds packages" in text for text in _dependency_box(prefs, monkeypatch, deps))
    finally:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
