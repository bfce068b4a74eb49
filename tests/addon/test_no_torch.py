"""The add-on registers in a Blender without torch and says how to install it."""
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import sys
class Blocker:
    """Make torch (and what needs it) unimportable, as in a stock Blender."""
    BLOCKED = ("torch", "torchvision", "diffusers", "transformers", "accelerate")
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
import importlib.util
_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    if name.split(".")[0] in Blocker.BLOCKED:
        return None
    return _find_spec(name, package)
importlib.util.find_spec = find_spec

sys.path[:0] = [TESTS, TESTS + "/addon"]
from blender_session import bpy, enable_addon, ADDON_MODULE
bpy.ops.wm.read_factory_settings(use_empty=True)
enable_addon()
assert "torch" not in sys.modules
assert hasattr(bpy.ops.dh, "render_stop_motion") and hasattr(bpy.ops.dh, "install_dependencies")
deps = sys.modules[ADDON_MODULE + ".session.deps"]
print("MISSING", deps.missing_modules())
from dh_synthetic import make_photo
import tempfile
tmp = tempfile.mkdtemp()
photo = make_photo(tmp + "/photo")
p = photo["paths"]
# importing with given depth and mask needs no torch
bpy.ops.dh.import_photo(filepath=str(p["image"]), depth_path=str(p["depth"]), mask_path=str(p["mask"]),
                        cache_dir=tmp + "/cache")
bpy.context.scene.render.filepath = tmp + "/frames/f_####"
try:
    bpy.ops.dh.render_stop_motion()
except RuntimeError as exc:
    print("REPORT", exc)
else:
    raise SystemExit("rendering without torch should report how to install it")
assert "torch" not in sys.modules
'''


@pytest.mark.slow
def test_registers_without_torch_and_says_how_to_install():
    script = f"TESTS = {str(TESTS)!r}\n" + SCRIPT
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=str(TESTS.parent))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "'torch'" in out.split("MISSING", 1)[1].split("\n")[0]
    report = out.split("REPORT", 1)[1].split("\n")[0]
    assert "torch" in report and "Install Dependencies" in report and "Traceback" not in report


def test_installer_pins_match_requirements():
    """The preferences' installer pip-installs exactly the pinned runtime requirements."""
    import ast

    root = TESTS.parent
    tree = ast.parse((root / "session" / "deps.py").read_text())
    pins = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "REQUIREMENTS")
    wanted = [line.split("#")[0].strip() for line in (root / "requirements.txt").read_text().splitlines()]
    assert sorted(pins) == sorted(line for line in wanted if line)
