"""session/deps.py: which Python packages are missing, the one-line message saying how to install
them, and the installer itself: pip for real, offline, from folders of tiny wheels written by the
test (tests/addon/tiny_wheels.py) standing in for the multi-GB requirements."""
import importlib.metadata
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy
import pytest
from packaging.requirements import Requirement

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module  # noqa: E402
from tiny_wheels import make_sdist, make_wheel  # noqa: E402

# A typical Windows user's extension folder (Blender 5.3, the extension installed from disk)
WINDOWS_TARGET = (r"C:\Users\alexandra.johansson\AppData\Roaming\Blender Foundation\Blender\5.3"
                  r"\extensions\.user\user_default\diffusion_handles\site-packages")
# diffusers' deepest module, as its wheel holds it
DEEP_MODULE = ("diffusers/pipelines/deprecated/stable_diffusion_attend_and_excite/"
               "pipeline_stable_diffusion_attend_and_excite.py")


@pytest.fixture
def deps(addon):
    return addon_module("session.deps")


def _errors():
    return addon_module("session.errors")


def test_missing_modules_and_require(deps):
    assert deps.missing_modules(("numpy", "dh_no_such_module")) == ["dh_no_such_module"]
    assert deps.missing_modules(("numpy",)) == []
    deps.require(("numpy", "PIL"))  # present: no error
    with pytest.raises(_errors().AddonError) as caught:
        deps.require(("dh_no_such_module",))
    message = str(caught.value)
    assert "dh_no_such_module" in message and "Install Dependencies" in message and "\n" not in message
    assert set(deps.PREVIEW_MODULES) <= set(deps.MODULES)


def test_requirements_leave_numpy_to_blender(deps, tmp_path):
    names = {deps.canonical(req.split("==")[0]) for req in deps.REQUIREMENTS}
    assert "numpy" not in names and not names & set(deps.BLENDER_OWN)
    online = deps.resolve_command(str(tmp_path / "r.json"))
    assert online[:4] == [sys.executable, "-s", "-m", "pip"] and "--no-index" not in online
    assert {"--dry-run", "--only-binary=:all:"} <= set(online)
    assert online[online.index("--report") + 1] == str(tmp_path / "r.json")
    assert [arg for arg in online if "==" in arg] == list(deps.REQUIREMENTS)
    offline = deps.resolve_command(str(tmp_path / "r.json"), str(tmp_path / "wheels"), ["a==1"])
    assert offline[offline.index("--find-links") + 1] == str(tmp_path / "wheels") and "--no-index" in offline
    assert offline[-1] == "a==1"


def test_installs_what_is_missing_and_leaves_numpy(deps, tmp_path):
    """numpy, which this Python has (as Blender has its own), is neither planned nor installed."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "dh-probe-core", "1.0", requires=["numpy>=1.20", "dh-probe-leaf==2.0"])
    make_wheel(wheels, "dh-probe-leaf", "2.0")
    make_wheel(wheels, "numpy", "99.0")  # a numpy in the folder changes nothing: the Python's own stays
    target = tmp_path / "site-packages"
    stages = []
    installed = deps.install(str(target), str(wheels), lambda stage, step, total: stages.append(stage),
                             requirements=["dh-probe-core==1.0"])
    assert sorted(installed) == ["dh-probe-core==1.0", "dh-probe-leaf==2.0"]
    assert sorted(p.name for p in target.iterdir()) == [
        "dh_probe_core", "dh_probe_core-1.0.dist-info", "dh_probe_leaf", "dh_probe_leaf-2.0.dist-info"]
    assert (target / "dh_probe_leaf" / "__init__.py").read_text() == "VERSION = '2.0'\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dh-")]  # staging and downloads gone
    assert stages[0].startswith("resolving") and any("installing 2" in s for s in stages)


def test_refuses_to_replace_the_pythons_numpy(deps, tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "dh-probe-old", "1.0", requires=["numpy<1"])
    make_wheel(wheels, "numpy", "0.9")
    target = tmp_path / "site-packages"
    with pytest.raises(_errors().AddonError) as caught:
        deps.install(str(target), str(wheels), requirements=["dh-probe-old==1.0"])
    message = str(caught.value)
    assert message.startswith("Install Dependencies: dh-probe-old needs numpy 0.9, which would replace "
                              f"Blender's own numpy {numpy.__version__};") and "\n" not in message
    assert not target.exists() and not list(tmp_path.glob(".dh-*"))


def test_binary_wheels_only_and_the_failing_package_named(deps, tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "dh-probe-core", "1.0", requires=["dh-probe-src"])
    make_sdist(wheels, "dh-probe-src", "1.0")  # a source archive pip could only build: refused
    with pytest.raises(_errors().AddonError) as caught:
        deps.install(str(tmp_path / "site"), str(wheels), requirements=["dh-probe-core==1.0"])
    message = str(caught.value)
    assert "no binary wheel of dh-probe-src" in message and f"Python {sys.version_info[0]}." in message
    assert str(wheels) in message and "\n" not in message
    # a wheel pip cannot install (a file inside it is not valid: here a folder where a file must go)
    make_wheel(wheels, "dh-probe-broken", "1.0", files={"dh_probe_broken/__init__.py": "",
                                                       "dh_probe_broken.data/purelib/dh_probe_broken": "x"})
    with pytest.raises(_errors().AddonError) as caught:
        deps.install(str(tmp_path / "site"), str(wheels), requirements=["dh-probe-broken==1.0"])
    message = str(caught.value)
    assert message.startswith("Install Dependencies: pip failed on dh-probe-broken") and "\n" not in message
    assert not (tmp_path / "site").exists()


def test_windows_path_limit_under_a_typical_user_folder(deps, tmp_path):
    """diffusers' deepest compiled module under a Windows user's extension folder passes 260 characters."""
    wheel = make_wheel(tmp_path, "diffusers", "0.42.1", files={DEEP_MODULE: "", "diffusers/__init__.py": ""})
    deepest = DEEP_MODULE.replace("pipeline_stable_diffusion_attend_and_excite.py",
                                  "__pycache__/pipeline_stable_diffusion_attend_and_excite.cpython-313.pyc")
    length, path = deps.longest_install_path([str(wheel)], WINDOWS_TARGET, "cpython-313")
    assert path == WINDOWS_TARGET + "\\" + deepest.replace("/", "\\") and length == len(path) == len(WINDOWS_TARGET) + 1 + len(deepest) > 260
    problem = deps.path_length_problem([str(wheel)], [WINDOWS_TARGET], "cpython-313",
                                       home=r"C:\Users\alexandra.johansson")
    assert problem is not None and "\n" not in problem
    assert f"{length} characters" in problem and "260" in problem and path in problem and "'Python Packages'" in problem
    room = 258 - len(deepest)  # the longest folder that still fits: 259 characters in all
    assert f"at most {room} characters" in problem and r"e.g. C:\Users\alexandra.johansson\dh-packages" in problem
    assert deps.path_length_problem([str(wheel)], ["C:\\" + "d" * (room - 3)], "cpython-313") is None
    assert deps.path_length_problem([str(wheel)], ["C:\\" + "d" * (room - 2)], "cpython-313") is not None
    # the same wheel under the suggested folder fits
    assert deps.path_length_problem([str(wheel)], [r"C:\Users\alexandra.johansson\dh-packages"],
                                    "cpython-313") is None


def test_a_too_long_path_refuses_before_installing(deps, tmp_path):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "dh-probe-deep", "1.0", files={"dh_probe_deep/" + "d" * 60 + "/m.py": ""})
    target = tmp_path / "site-packages"
    target.mkdir()
    (target / "kept.txt").write_text("as it was")
    limit = len(str(target)) + 50  # as Windows' limit would be for a longer folder
    with pytest.raises(_errors().AddonError) as caught:
        deps.install(str(target), str(wheels), requirements=["dh-probe-deep==1.0"], max_path=limit)
    message = str(caught.value)
    assert f"{limit}-character path limit" in message and "Nothing was installed" in message
    assert sorted(p.name for p in target.iterdir()) == ["kept.txt"] and not list(tmp_path.glob(".dh-*"))


def _blender_like_python(folder):
    """A Python that has pip and numpy and nothing else, like Blender's own (this numpy copied in)."""
    venv.create(folder, with_pip=True, symlinks=os.name != "nt")
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    dist = importlib.metadata.distribution("numpy")
    for file in dist.files:
        source = Path(dist.locate_file(file))
        if source.is_file() and ".." not in file.parts:
            (site / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, site / file)
    return python


@pytest.mark.slow
def test_the_requirements_on_a_blender_like_python(deps, tmp_path):
    """Every pin of REQUIREMENTS, as stand-ins with the real packages' dependencies among them
    (torchvision on torch, scipy on numpy, ...), resolves to wheels only and installs no numpy."""
    python = _blender_like_python(tmp_path / "blender-python")
    wheels = tmp_path / "wheels"
    pinned = {deps.canonical(req.split("==")[0]): req for req in deps.REQUIREMENTS}
    for req in deps.REQUIREMENTS:
        name, version = req.split("==")
        real = map(Requirement, importlib.metadata.requires(name) or [])  # this environment has the real ones
        among = [str(r) for r in real if deps.canonical(r.name) in {*pinned, "numpy"}
                 and "extra" not in str(r.marker or "")]
        make_wheel(wheels, name, version, requires=among)
    assert any(r.startswith("numpy") for r in importlib.metadata.requires("scipy"))
    target = tmp_path / "site-packages"
    installed = deps.install(str(target), str(wheels), python=str(python))
    assert sorted(map(str.lower, installed)) == sorted(map(str.lower, deps.REQUIREMENTS))
    names = {p.name.split("-")[0].lower() for p in target.iterdir()}
    assert "numpy" not in names and {"torch", "scipy", "openexr", "segment_anything"} <= names
