"""Diffusion Handles engine: 3D-aware object edits in photos with a depth-to-image diffusion model.

Pure Python + torch; never imports bpy (the Blender add-on converts and delegates to it).
Importing this package is cheap: heavy modules (torch, diffusers, transformers) load lazily in
the submodules that need them.

Internal imports are relative so the package works both as ``engine`` (command line, tests) and
as a subpackage of the installed Blender extension.
"""

__version__ = "0.1.0"

from .errors import CancelledError, EngineError, InputError, ModelNotFoundError  # noqa: F401
