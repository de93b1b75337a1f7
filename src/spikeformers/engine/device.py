"""The device a command runs on: named by the user, checked to exist on this machine before anything starts."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU) or a device PyTorch names, checked to exist here;
    a ValueError of one line naming ``--device`` when it does not."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r} is not a device: {err}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: this PyTorch ({torch.__version__}) sees no CUDA GPU "
                             f"({'a CPU-only build' if torch.version.cuda is None else 'no GPU visible'}); use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: there are {count} CUDA GPU(s), numbered 0 to {count - 1}")
    elif device.type not in ("cpu", "meta"):
        available = getattr(torch, device.type, None)
        if available is None or not getattr(available, "is_available", lambda: False)():
            raise ValueError(f"--device {name}: no {device.type} device is available here; use --device cpu")
    return device


def autocast_dtype(name: str, device: torch.device) -> torch.dtype:
    """The mixed-precision type: ``auto`` is float16 on CUDA (with a loss scaler), bfloat16 elsewhere."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    return getattr(torch, name)
