"""Prop. 1 (App. A.2, eq. 24): a Mamba layer with λ = 0 and B = 1 recovers absolute time from an all-ones input.

With Λ = 0 the recurrence h_t = e^{0} h_{t−1} + 1 · x_t · B_t is a cumulative sum, so on x ≡ 1 the state is
h_t = Σ_{s ≤ t} 1 = t. :class:`TimeRecovery` runs exactly this scan through :func:`kernels.selective_scan` and
returns the index t = 1..L, or the DESIGN §3 time channel τ_t = t / L when ``normalize=True``.
"""
from __future__ import annotations

import torch
from torch import nn

from kernels import selective_scan


class TimeRecovery(nn.Module):
    """The Prop. 1 layer: time t (or t / L) from a scan with λ = 0, B = 1 on an all-ones input.

    Parameters
    ----------
    normalize : return τ_t = t / L (the grid's time channel, DESIGN §3) instead of t.

    ``forward(batch, length, device=None, dtype=torch.float32)`` returns a (batch, length) tensor whose row is
    [1, 2, …, L] (or [1/L, 2/L, …, 1]). Integers up to 2²⁴ are exact in float32, so the index form is exact.
    """

    def __init__(self, normalize: bool = True):
        super().__init__()
        self.normalize = normalize

    def forward(self, batch: int, length: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
        if length < 1 or batch < 1:
            raise ValueError(f"batch and length must be positive, got batch={batch}, length={length}")
        ones = torch.ones(batch, 1, length, device=device, dtype=dtype)
        A = torch.zeros(1, 1, device=device, dtype=dtype)                  # λ = 0
        B = torch.ones(batch, 1, length, device=device, dtype=dtype)       # B ≡ 1
        t = selective_scan(ones, ones, A, B, B, delta_mode="channel", input_delta=False)[:, 0, :]
        return t / length if self.normalize else t
