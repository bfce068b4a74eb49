"""engine.devices: the device and dtype rules of docs/design.md. "auto" picks CUDA, then Apple MPS,
then the CPU; dtype "auto" is fp16 on CUDA and MPS and fp32 on the CPU; fp16 on the CPU and unknown
names are refused with an InputError naming the value."""
from __future__ import annotations

import pytest
import torch

from engine.devices import resolve_device, resolve_dtype
from engine.errors import InputError

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@pytest.mark.parametrize("name,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                        ("FP32", torch.float32), ("Bf16", torch.bfloat16)])
def test_explicit_dtypes_on_the_cpu(name, dtype):
    assert resolve_dtype(name, "cpu") is dtype
    assert resolve_dtype(name, torch.device("cpu")) is dtype


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps", torch.device("cuda")])
def test_fp16_is_allowed_off_the_cpu(device):
    assert resolve_dtype("fp16", device) is torch.float16


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_fp16_on_the_cpu_is_refused(device):
    with pytest.raises(InputError, match="fp16.*CPU.*fp32 or bf16"):
        resolve_dtype("fp16", device)


def test_auto_dtype_is_half_on_accelerators_and_fp32_on_the_cpu():
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.float16
    assert resolve_dtype("auto", "cuda:0") is torch.float16
    assert resolve_dtype("auto", "mps") is torch.float16
    assert resolve_dtype(None, "cpu") is torch.float32  # no name: auto
    assert resolve_dtype("AUTO", "cpu") is torch.float32
    # with no device, auto follows the device "auto" picks on this machine
    expected = torch.float16 if resolve_device("auto").type in ("cuda", "mps") else torch.float32
    assert resolve_dtype("auto") is expected


@pytest.mark.parametrize("name", ["fp64", "float16", "half", "int8"])
def test_unknown_dtype_is_named_with_the_choices(name):
    with pytest.raises(InputError, match=f"dtype '{name}'.*auto, fp32, fp16, bf16"):
        resolve_dtype(name, "cpu")


def test_cpu_and_auto_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    auto = resolve_device("auto")
    assert resolve_device(None) == auto and resolve_device("") == auto
    # CUDA first, then MPS, then the CPU
    assert auto.type == ("cuda" if HAS_CUDA else "mps" if HAS_MPS else "cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu", "vulkan:0", "cuda0"])
def test_unknown_device_is_named_with_the_choices(name):
    with pytest.raises(InputError, match=f"device '{name}'.*auto, cuda, mps, cpu"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_where_there_is_none_is_refused_else_used(name):
    if HAS_CUDA:
        assert resolve_device(name) == torch.device(name)
    else:
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device(name)


def test_mps_where_there_is_none_is_refused_else_used():
    if HAS_MPS:
        assert resolve_device("mps") == torch.device("mps")
    else:
        with pytest.raises(InputError, match="MPS is not available"):
            resolve_device("mps")
