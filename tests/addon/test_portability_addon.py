"""The add-on without the Unix-only standard modules (resource, fcntl, pwd, grp, termios), as in a
Windows Blender: a subprocess where importing any of them raises ImportError registers the
add-on, imports a photo (given depth and mask) from a folder whose name has spaces and non-ASCII
characters, and renders a moved frame with the render engine (preview engine)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from unix_blocker import environment  # noqa: E402

SCRIPT = r'''
import sys
try:
    import fcntl
except ImportError:
    pass
else:
    raise SystemExit("the Unix-only modules are not blocked")
sys.path[:0] = [TESTS, TESTS + "/addon"]
from blender_session import bpy, enable_addon
bpy.ops.wm.read_factory_settings(use_empty=True)
enable_addon()
from dh_synthetic import import_photo, make_photo
photo = make_photo(WORK + "/photo été 1")
obj = import_photo(bpy, photo, WORK, engine="PREVIEW")
scene = bpy.context.scene
assert scene.render.engine == "DIFFUSION_HANDLES"
scene.frame_set(1)
obj.location.x += 0.3
obj.keyframe_insert("location", frame=1)
scene.render.filepath = WORK + "/rendu/frame.png"
assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
print("RENDERED", flush=True)
'''


@pytest.mark.slow
def test_addon_registers_imports_and_renders_without_unix_only_modules(tmp_path):
    work = tmp_path / "projet à rendre"
    work.mkdir()
    script = f"TESTS = {str(TESTS)!r}\nWORK = {str(work)!r}\n" + SCRIPT
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, encoding="utf-8",
                            timeout=300, cwd=str(TESTS.parent), env=environment(tmp_path / "site"))
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "RENDERED" in out, out
    from PIL import Image

    frame = np.asarray(Image.open(work / "rendu" / "frame.png").convert("RGB"))
    photo = np.asarray(Image.open(work / "photo été 1" / "image.png").convert("RGB"))
    assert frame.shape == photo.shape
    assert np.abs(frame.astype(int) - photo).max() > 50  # the moved object, rendered
