"""Run Blender's own extension tool (the code behind `blender --command extension ...`) from the
bpy module in this environment: `python tools/blender_ext.py validate|build`.

validate: checks blender_manifest.toml and the package the way Blender does.
build:    writes the installable zip to dist/ (the manifest's [build] excludes tests, caches, venv);
          `build --output-dir DIR` writes it to DIR instead.
"""
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def blender_ext_script() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("bpy")  # locate without importing Blender
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: the bpy module is not installed (run `make test` once to create .venv)")
    base = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        sys.exit(f"error: blender_ext.py not found under {base}")
    return found[-1]


def main(argv):
    if not argv or argv[0] not in {"validate", "build"} or argv[1:] and argv[1:2] != ["--output-dir"] \
            or len(argv) not in (1, 3):
        sys.exit("usage: python tools/blender_ext.py validate|build [--output-dir DIR]")
    cmd = argv[0]
    args = [cmd, "--source-dir", str(ROOT)] if cmd == "build" else [cmd, str(ROOT)]
    if cmd == "build":
        out = Path(argv[2]) if len(argv) == 3 else ROOT / "dist"
        out.mkdir(parents=True, exist_ok=True)
        args += ["--output-dir", str(out)]
    sys.argv = ["blender_ext", *args]
    runpy.run_path(str(blender_ext_script()), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
