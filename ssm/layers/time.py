"""Prop. 1 (App. A.2, eq. 24) as a layer: a Mamba layer with λ = 0 and B = 1 recovers absolute time.

With Λ = 0 the recurrence h_t = h_{t−1} + Δ · 1 · 1 is a cumulative sum, so on an all-ones input the state is
h_t = t·Δ. The scan itself is :func:`kernels.recover_time`; :class:`TimeRecovery` wraps it as a module for the
models (the time channel of Cor. 2, eq. 32).
"""
from __future__ import annotations

import torch
from torch import nn

from kernels import recover_time


class TimeRecovery(nn.Module):
    """The Prop. 1 layer: time t (or τ_t = t / L, the grid's time channel, docs/design.md §1) from the λ = 0 scan.

    ``forward(batch, length, device=None, dtype=torch.float32)`` returns a (batch, length) tensor whose rows are
    [1, 2, …, L] (or [1/L, 2/L, …, 1] with ``normalize=True``, the default). Integers up to 2²⁴ are exact in
    float32, so the index form is exact.
    """

    def __init__(self, normalize: bool = True):
        super().__init__()
        self.normalize = normalize

    def forward(self, batch: int, length: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
        return recover_time(batch, length, normalize=self.normalize, dtype=dtype, device=device)
