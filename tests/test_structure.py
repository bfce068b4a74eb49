"""Project structure rules: engine/ never imports Blender, the manifest validates, the zip is clean."""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"bpy", "mathutils", "bmesh", "bpy_extras", "gpu", "addon_utils"}


def _imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              in {"import_module", "__import__"} and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value.split(".")[0], node.lineno


def test_engine_never_imports_blender():
    offenders = []
    files = sorted((REPO_ROOT / "engine").rglob("*.py"))
    assert files, "engine/ has no Python files"
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, line in _imported_modules(tree):
            if name in FORBIDDEN:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {name}")
    assert offenders == []


def test_import_engine_does_not_load_bpy():
    code = "import sys, engine; assert 'bpy' not in sys.modules and 'mathutils' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def _blender_ext(*args):
    return subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "blender_ext.py"), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True)


def test_manifest_validates():
    result = _blender_ext("validate")
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_zip_excludes_tests_and_caches(tmp_path):
    result = _blender_ext("build", "--output-dir", str(tmp_path))  # this build's zip, never an older one
    assert result.returncode == 0, result.stdout + result.stderr
    version = tomllib.loads((REPO_ROOT / "blender_manifest.toml").read_text())["version"]
    assert [p.name for p in tmp_path.iterdir()] == [f"diffusion_handles-{version}.zip"]
    names = zipfile.ZipFile(tmp_path / f"diffusion_handles-{version}.zip").namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert any(n.startswith("engine/") for n in names)
    bad = [n for n in names if n.startswith(("tests/", ".venv/", ".git/", "dist/", "docs/"))
           or "__pycache__" in n or n.endswith(".pyc")]
    assert bad == []
