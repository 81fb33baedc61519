"""The sampling grid and the discrete L² geometry every part of the lab shares (docs/design.md §1).

A signal is a function on [0, 1] sampled at the midpoints s_i = (i − ½)/L, i = 1..L, and
⟨f, g⟩ = (1/L) Σ_i f(s_i) g(s_i),  ‖f‖² = ⟨f, f⟩.
"""
from __future__ import annotations

import torch


def check_length(L) -> int:
    """Validate a number of grid points (the argument ``samples`` of the signal builders); raise ValueError."""
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"samples (the number of grid points) must be a positive integer, got {L!r}")
    return L


def midpoints(L: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Grid s_i = (i − ½)/L, i = 1..L. Shape (L,)."""
    check_length(L)
    return (torch.arange(L, dtype=dtype, device=device) + 0.5) / L


def time_channel(L: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """The time channel τ_i = i/L read by Δ (docs/design.md §3): the positional encoding, and the state h_i of the
    Prop. 1 time-recovery scan. Shape (L,)."""
    check_length(L)
    return torch.arange(1, L + 1, dtype=dtype, device=device) / L


def inner(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """⟨f, g⟩ = (1/L) Σ_i f_i g_i over the last axis (batched). Shape: broadcast of the leading axes."""
    return (f * g).mean(-1)


def norm_sq(f: torch.Tensor) -> torch.Tensor:
    """‖f‖² = ⟨f, f⟩ over the last axis."""
    return inner(f, f)
