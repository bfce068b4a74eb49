"""Python dependencies inside Blender: Blender's Python has numpy but not torch and friends (no bpy).

The preferences' "Install dependencies" action pip-installs the pinned packages into the
extension's own user directory (``extension_path_user(..., "site-packages")``, found by
blender/addon.py, which also puts it on ``sys.path`` when the add-on registers); from the package
index, or offline from a folder of wheel files (the preferences' *Wheels Folder*: ``pip --no-index
--find-links``). Alternatively the user points the preferences at the site-packages folder of an
existing Python 3.11 environment that has them.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from .errors import INSTALL_HINT, AddonError

# The engine's runtime requirements (the same pins as requirements.txt; a test keeps them equal).
REQUIREMENTS = (
    "torch==2.14.1",
    "torchvision==0.29.1",
    "diffusers==0.42.1",
    "transformers==5.24.0",
    "accelerate==1.15.0",
    "huggingface_hub==2.4.0",
    "safetensors==0.8.0",
    "segment-anything==1.0",
    "numpy==1.26.4",
    "pillow==13.0.0",
    "scipy==1.17.1",
    "OpenEXR==3.5.3",
)
# import name -> what it is for (what the status box lists as missing)
MODULES = {
    "numpy": "arrays", "PIL": "image files", "scipy": "geometry solves",
    "torch": "the diffusion engine", "diffusers": "the diffusion model", "transformers": "text encoder, depth",
    "safetensors": "weights and caches", "huggingface_hub": "model files",
}
PREVIEW_MODULES = ("numpy", "PIL", "scipy", "torch")  # the preview warps with torch; no weights


def missing_modules(names=None):
    return [name for name in (names or MODULES) if importlib.util.find_spec(name) is None]


def install_hint():
    return INSTALL_HINT


def require(names):
    """Raise AddonError naming what is missing and how to install it."""
    missing = missing_modules(names)
    if missing:
        raise AddonError(f"missing Python package(s): {', '.join(missing)}. {install_hint()}")


def pip_install_command(target, wheels_dir=None, requirements=None):
    """pip into ``target``; from the index, or only from the wheel files in ``wheels_dir`` (offline)."""
    source = ["--no-index", "--find-links", wheels_dir] if wheels_dir else []
    return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--upgrade",
            *source, "--target", target, *(REQUIREMENTS if requirements is None else requirements)]


def install(target, wheels_dir=None, progress=None):
    """pip-install the requirements into a staging folder next to ``target``, then move them in:
    a failed install leaves ``target`` as it was (nothing half-installed on sys.path)."""
    import shutil
    import tempfile

    progress = progress or (lambda stage, step, total: None)
    if importlib.util.find_spec("pip") is None:
        progress("ensurepip", 0, 2)
        subprocess.run([sys.executable, "-m", "ensurepip"], capture_output=True)
    os.makedirs(target, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(os.path.abspath(target)))
    try:
        progress("pip install" + (f" from {wheels_dir}" if wheels_dir else " (several GB, minutes)"), 1, 2)
        result = subprocess.run(pip_install_command(staging, wheels_dir), capture_output=True, text=True)
        if result.returncode != 0:
            lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:] or ["(no output)"]
            raise AddonError(f"pip install into {target} failed: {errors[-1]}")
        staged = os.listdir(staging)
        projects = {name.split("-")[0].lower() for name in staged if name.endswith(".dist-info")}
        for name in os.listdir(target):  # an older version's metadata goes with it
            if name.endswith(".dist-info") and name.split("-")[0].lower() in projects:
                shutil.rmtree(os.path.join(target, name))
        for name in staged:
            destination = os.path.join(target, name)
            if os.path.isdir(destination) and not os.path.islink(destination):
                shutil.rmtree(destination)
            elif os.path.lexists(destination):
                os.remove(destination)
            os.replace(os.path.join(staging, name), destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
