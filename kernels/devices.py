"""The torch device a computation runs on: one resolver for every package and command."""
from __future__ import annotations

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
