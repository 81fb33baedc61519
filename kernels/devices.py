"""The torch device a computation runs on: one resolver for every package and command."""
from __future__ import annotations

import os

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` → CUDA when available, else the CPU; ``"cpu"``/``"cuda"`` as asked (a ``torch.device`` passes).

    Raises ValueError naming ``device`` for an unknown name, or for ``"cuda"`` on a machine without CUDA.
    """
    if isinstance(device, torch.device):
        device = device.type
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available on this machine")
    return torch.device(device)


def free_memory(device) -> int:
    """Bytes that can still be allocated on ``device``: free GPU memory on CUDA, available RAM on the CPU.

    Used to refuse a computation whose estimated size would not fit, before it starts. On the CPU this reads
    the operating system's count of available pages (Linux, macOS); where that is unknown it returns a very
    large number, so nothing is refused."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62
