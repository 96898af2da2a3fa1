"""torch and diffusers, imported on first use: device, dtype, and telling faults apart.

A CUDA out-of-memory error is recoverable: the render's tensors go out of scope, the cache
is emptied, and the next task fits again. Other CUDA errors (an illegal memory access, a
device-side assert, ECC errors) leave the CUDA context unusable for the rest of the process;
the only cure is a new process, so they raise ``EngineFault`` and the worker exits for its
supervisor to restart it (``docs/gpu.md``).
"""

from __future__ import annotations

import gc
from types import ModuleType
from typing import Any

from segue.errors import ModelNotOpen

# Words in the messages of errors that poison the CUDA context (torch.AcceleratorError and
# the RuntimeErrors of older torch builds).
_FATAL_MARKERS = ("cuda error", "cublas_status", "cudnn_status", "device-side assert",
                  "illegal memory access", "uncorrectable ecc", "nccl error")


def import_gpu_stack() -> tuple[Any, Any]:
    try:
        import diffusers
        import torch
    except ImportError as exc:
        raise ModelNotOpen(
            "The diffusion engine needs torch and diffusers: pip install 'segue[gpu]' "
            f"({exc.name} is missing)."
        ) from exc
    return torch, diffusers


def is_oom(torch: Any, exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def is_fatal(exc: BaseException) -> bool:
    """A CUDA error other than out-of-memory: the context is lost."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return isinstance(exc, RuntimeError) and (
        type(exc).__name__ == "AcceleratorError" or any(m in text for m in _FATAL_MARKERS))


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def free_memory() -> None:
    """Collect the dropped render's tensors and return the cached blocks to the driver."""
    torch, _ = import_gpu_stack()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def allocated_bytes() -> int:
    """GPU memory held by live tensors (0 without CUDA)."""
    torch, _ = import_gpu_stack()
    return int(torch.cuda.memory_allocated()) if torch.cuda.is_available() else 0


def dtype_kwarg(diffusers: ModuleType) -> str:
    """``dtype`` from diffusers 0.42 (``torch_dtype`` is deprecated there), before: the old name."""
    from packaging.version import Version

    return "dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype"


def resolve_device(torch: Any, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelNotOpen(
            f"The diffusion engine is configured for device {device!r} but torch sees no CUDA "
            "device. Install a CUDA build of torch, or set device to cpu (very slow)."
        )
    return device


def resolve_dtype(torch: Any, dtype: str, device: str) -> Any:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)
