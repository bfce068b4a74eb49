"""session/ runs without Blender: every module imports, and a photo's cache, the frame renderer
and the resumable frame loop work, in a Python where bpy, mathutils and bpy_extras cannot be
imported (the bpy-free session package)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r'''
import importlib, json, pkgutil, sys, types
ROOT, TESTS, OUT = sys.argv[1:4]


class NoBlender:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"bpy", "mathutils", "bpy_extras", "bmesh", "gpu", "addon_utils"}:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, NoBlender())
package = types.ModuleType("dh")  # the extension's package, without running its __init__ (which registers)
package.__path__ = [ROOT]
sys.modules["dh"] = package
names = sorted(m.name for m in pkgutil.iter_modules([ROOT + "/session"]))
for name in names:
    importlib.import_module("dh.session." + name)

import numpy as np
sys.path.insert(0, TESTS)
from dh_synthetic import make_photo
from dh.session import frames, jobs, photo, renderers, stopmotion

result = {"modules": names}
paths = make_photo(OUT + "/photo")["paths"]
inputs, cache, _ = photo.import_inputs(OUT + "/cache", "photo", str(paths["image"]), str(paths["depth"]),
                                       str(paths["mask"]), "", 0, {"models_dir": None, "overrides": {},
                                       "device": "cpu"}, lambda *args: None)
source = frames.FrameSource("PREVIEW", cache, "", inputs.shape, json.dumps({"engine": "PREVIEW"}))
renderer = source.renderer()
result["same_renderer"] = source.renderer() is renderer  # built once per session
result["contract"] = isinstance(renderer.base, renderers.Renderer)
move = np.eye(4)
move[0, 3] = 0.2
edits = [frames.as_edit(np.eye(4)), frames.as_edit(move), frames.as_edit(np.eye(4))]
plan = [stopmotion.FramePlan(n + 1, e, f"{OUT}/frames/f_{n + 1:04d}.png", source.key(e)) for n, e in enumerate(edits)]
first = renderer(edits[:1])[0]
result["frame"] = [list(first.shape), str(first.dtype)]
result["remembered"] = renderer(edits[:1])[0] is first  # the same key: no second render
summary = stopmotion.run_frames(plan, renderer)
result["run"] = [summary.rendered, summary.reused, summary.kept]
result["again"] = stopmotion.run_frames(plan, renderer).kept
state = jobs.begin("test", lambda progress, should_cancel: (progress("step", 1, 2), 42)[1])
state.done.wait(30)
result["job"] = [state.result, state.progress, state.status, jobs.current_job() is None]
result["blender_loaded"] = sorted(n for n in sys.modules if n.split(".")[0] in {"bpy", "mathutils", "bpy_extras"})
print("RESULT " + json.dumps(result))
'''


def test_session_package_works_without_blender(tmp_path):
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(ROOT / "tests" / "addon"), str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.split("RESULT ", 1)[1].splitlines()[0])
    on_disk = sorted(p.stem for p in (ROOT / "session").glob("*.py") if p.stem != "__init__")
    assert result["modules"] == on_disk  # every session module imported
    assert result["blender_loaded"] == []
    assert result["same_renderer"] and result["contract"]
    assert result["frame"] == [[24, 32, 3], "uint8"] and result["remembered"]
    # frame 3 repeats frame 1's pose: rendered once, copied; a second run keeps every file
    assert result["run"] == [[1, 2], [3], []]
    assert result["again"] == [1, 2, 3]
    assert result["job"] == [42, 0.5, "step 1/2", True]
