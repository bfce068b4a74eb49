"""Device and dtype selection (docs/design.md): CUDA, Apple MPS or CPU; dtype "auto" means fp16
on CUDA and MPS and fp32 on the CPU. fp16 on the CPU is refused (use fp32 or bf16)."""
from __future__ import annotations

from .errors import InputError
from .settings import DEVICE_CHOICES, DTYPE_CHOICES  # noqa: F401  (the choices live with the settings)


def resolve_device(name: str = "auto"):
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise InputError(f"device {name!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    if base == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r}: CUDA is not available on this machine")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"device {name!r}: Apple MPS is not available on this machine")
    return torch.device(name)


def resolve_dtype(name: str = "auto", device=None):
    import torch

    name = (name or "auto").lower()
    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if name in table:
        if device is not None and torch.device(device).type == "cpu" and name == "fp16":
            raise InputError("dtype 'fp16': half precision is not supported on the CPU; use fp32 or bf16")
        return table[name]
    if name != "auto":
        raise InputError(f"dtype {name!r}: expected one of {', '.join(DTYPE_CHOICES)}")
    device = torch.device(device) if device is not None else resolve_device("auto")
    return torch.float16 if device.type in ("cuda", "mps") else torch.float32
