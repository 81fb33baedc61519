"""Prop. 1 (App. A.2, eq. 24): a scan with A = 0 and B = 1 on an all-ones input counts its steps.

With A = 0 the recurrence h_t = e^{Δ·0} h_{t−1} + Δ · 1 · 1 is a cumulative sum, so h_t = t·Δ: Δ = 1 gives the
index t = 1..L, Δ = 1/L the grid's time channel τ_t = t/L. This is how a Mamba layer recovers absolute time
without positional encoding; the bases of :mod:`approx.bases` and the layer :class:`ssm.layers.TimeRecovery` both
compute time this way.
"""
from __future__ import annotations

import torch

from .scan import selective_scan


def recover_time(batch: int, length: int, *, normalize: bool = False, dtype=torch.float32, device=None,
                 backend: str = "auto") -> torch.Tensor:
    """(batch, length) rows [1, 2, …, L] (or [1/L, …, 1] with ``normalize``), computed by the Prop. 1 scan.

    Integers up to 2²⁴ are exact in float32, so the index form is exact there.
    """
    for name, value in (("batch", batch), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    ones = torch.ones(batch, 1, length, dtype=dtype, device=device)
    step = ones / length if normalize else ones
    A = torch.zeros(1, 1, dtype=dtype, device=device)
    return selective_scan(ones, step, A, ones, ones, delta_mode="channel", input_delta=True, backend=backend)[:, 0]
