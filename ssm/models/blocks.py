"""The parts of the full Mamba block (Tab. 2, eqs. 14b and 14g) that the recall models add to the 1-layer SSMs,
stacked over ensemble members like :mod:`ssm.models.stacked`:

- a causal depthwise convolution of kernel size k with bias, then σ = SiLU (eq. 14b):
  x̂_t[c] = σ(b[c] + Σ_{j=0}^{k−1} w[c, j] x_{t−k+1+j}[c]), zero before the sequence starts (PyTorch's
  ``Conv1d(groups=channels, padding=k−1)`` with the trailing outputs dropped);
- the gate of eq. (14g): ỹ_t = σ(W_g x_t + b_g) ⊙ y_t, σ = SiLU;
- the read-out every SSM model shares: the gate when there is one, LN_out, the untied head.

Weights are (R, …) tensors, one row per member; inputs (R, B, L, channels).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .stacked import layer_norm, linear, uniform


def conv_shapes(prefix: str, channels: int, kernel: int) -> dict:
    """Name → shape of one causal depthwise convolution: ``{prefix}.weight`` (channels, k), ``{prefix}.bias``."""
    return {f"{prefix}.weight": (channels, kernel), f"{prefix}.bias": (channels,)}


def conv_init(generator: torch.Generator, prefix: str, channels: int, kernel: int) -> dict:
    """PyTorch's Conv1d initialisation (fan-in k for a depthwise kernel): weight and bias ~ U(±k^{−1/2})."""
    return {f"{prefix}.weight": uniform(generator, (channels, kernel), kernel ** -0.5),
            f"{prefix}.bias": uniform(generator, (channels,), kernel ** -0.5)}


def causal_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-member causal depthwise convolution: x (R, B, L, c), weight (R, c, k), bias (R, c) → (R, B, L, c),
    output t reading x_{t−k+1..t} (no activation)."""
    k = weight.shape[-1]
    windows = F.pad(x, (0, 0, k - 1, 0)).unfold(2, k, 1)                 # (R, B, L, c, k), oldest first
    view = (x.shape[0], 1, 1) + tuple(weight.shape[1:])
    return (windows * weight.reshape(view)).sum(-1) + bias.reshape(x.shape[0], 1, 1, -1)


def gate_shapes(d: int) -> dict:
    """Name → shape of the gate's Linear(x): ``gate.weight`` (d, d), ``gate.bias`` (d,)."""
    return {"gate.weight": (d, d), "gate.bias": (d,)}


def gate_init(generator: torch.Generator, d: int) -> dict:
    """PyTorch's Linear initialisation: U(±d^{−1/2})."""
    return {"gate.weight": uniform(generator, (d, d), d ** -0.5), "gate.bias": uniform(generator, (d,), d ** -0.5)}


def gate(params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """σ(W_g x + b_g) ⊙ y (eq. 14g, σ = SiLU): x, y (R, B, L, d)."""
    return F.silu(linear(x, params["gate.weight"], params["gate.bias"])) * y


def readout(params: dict, xbar: torch.Tensor, y: torch.Tensor, gated: bool) -> torch.Tensor:
    """logits = W_o LN_out(ỹ) with ỹ the gated y (eq. 14g) when ``gated``, y otherwise: (R, B, L, classes)."""
    if gated:
        y = gate(params, xbar, y)
    return linear(layer_norm(y, params["norm_out.weight"], params["norm_out.bias"]), params["head"])
