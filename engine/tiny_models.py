"""Tiny random-weight models in the real on-disk formats, laid out as ``DIR/<role>/``.

They load through exactly the code a real download goes through (``registry.resolve`` with
``models_dir=DIR``), so tests and the CLI exercise real loading without weights or a network.
"""
from __future__ import annotations

import importlib
from pathlib import Path

# role -> (module relative to this package, function(out_dir: Path, seed: int) -> None)
WRITERS: dict[str, tuple[str, str]] = {
    "diffusion": (".diffusion.tiny", "write_tiny_diffusion"),
    "sd15": (".diffusion.tiny", "write_tiny_sd15"),
    "sd15-controlnet": (".diffusion.tiny", "write_tiny_sd15_controlnet"),
    "sdxl": (".diffusion.tiny", "write_tiny_sdxl"),
    "sdxl-controlnet": (".diffusion.tiny", "write_tiny_sdxl_controlnet"),
    "depth": (".perception.tiny", "write_tiny_depth"),
    "depth-anything": (".perception.tiny", "write_tiny_depth_anything"),
    "detector": (".perception.tiny", "write_tiny_detector"),
    "sam": (".perception.tiny", "write_tiny_sam"),
    "inpaint": (".perception.tiny", "write_tiny_inpaint"),
}


def write_tiny_models(out_dir, roles=None, seed: int = 0) -> Path:
    """Write tiny models for ``roles`` (default: all) under ``out_dir``; returns ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for role in roles or WRITERS:
        module_name, func = WRITERS[role]
        writer = getattr(importlib.import_module(module_name, __package__), func)
        writer(out / role, seed=seed)
    return out
