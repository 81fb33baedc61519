"""The 1-layer S4D of Tab. 1 (time-invariant mixer, Δ ≡ 1, no convolution, no gate) and Mamba-S4D (the full
Mamba block, convolution and gate, with the S6 mixer replaced by S4D; App. D.3), stacked over members.

For one member, with x_t and x̄_t = LN_in(x_t) as in :mod:`ssm.models.mamba`:

    h_t = e^{Λ} ⊙ h_{t−1} + x̄_t ⊗ B,   Λ = −exp(A_log) ∈ R^{d×N}, B ∈ R^N    (eq. 14f, Δ_t = 1, B_t = B)
    y_t[c] = Σ_n C[c, n] h_t[c, n],    C ∈ R^{d×N}: one output vector per channel, as in S4D (Gu et al., 2022)
    logits_t = W_o LN_out(y_t)                                                   (untied head, no bias)

Parameters per member (the formula that reproduces every "# prm." of Tables A.1–A.4):
|V|·d_e + d·|V| + 2dN + N + 4d (Λ and C: 2dN, B: N, the two LayerNorms: 4d; no skip D).
Initialisation: Λ[c, n] = −(n + 1)·Δ_c with Δ_c ~ LogUniform[10⁻³, 10⁻¹] (S4D-real with its step folded in, since
Δ ≡ 1), B = 1, C ~ N(0, 1/N), E ~ N(0, 1), W_o ~ U(±d^{−1/2}).

The mixer is linear and time-invariant, so it runs as S4D does, as a causal convolution with the kernel
K[c, k] = Σ_n C[c, n] B[n] e^{Λ[c, n] k}, k = 0..L−1 (one Toeplitz matmul per member and channel).

``conv`` and ``gate`` as in :mod:`ssm.models.mamba` (the mixer reads x̂ = SiLU(conv(x̄)); y is gated by x̄), their
weights drawn after the others. :class:`MambaS4DConfig` is this model with both on (k = 4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from .blocks import causal_conv, conv_init, conv_shapes, gate_init, gate_shapes, readout
from .stacked import (SSMConfig, StackedModel, embed, layer_norm, normal, pe_scales, uniform,
                      with_position)

DT_MIN, DT_MAX = 1e-3, 1e-1


@dataclass(frozen=True)
class S4DConfig(SSMConfig):
    """1-layer S4D without convolution and gate, Tab. 1 / Tables A.1–A.4."""

    name: ClassVar[str] = "s4d"


def toeplitz(kernel: torch.Tensor) -> torch.Tensor:
    """(…, L) kernel K → (…, L, L) lower-triangular matrix T[t, s] = K[t − s] for t ≥ s, 0 otherwise."""
    L = kernel.shape[-1]
    t = torch.arange(L, device=kernel.device)
    lag = t[:, None] - t[None, :]
    return kernel[..., lag.clamp(min=0)] * (lag >= 0).to(kernel.dtype)


class StackedS4D(StackedModel):
    """R members of :class:`S4DConfig`'s model with stacked weights (see the module docstring)."""

    config_class = S4DConfig

    def shapes(self) -> dict:
        c = self.config
        d, N, V = c.d, c.N, self.vocab_size
        return {"embedding": (V, d - 1 if c.pe else d), "norm_in.weight": (d,), "norm_in.bias": (d,),
                "A_log": (d, N), "B": (N,), "C": (d, N), "norm_out.weight": (d,), "norm_out.bias": (d,),
                "head": (self.num_classes, d),
                **(conv_shapes("conv", d, c.conv) if c.conv else {}), **(gate_shapes(d) if c.gate else {})}

    def init_member(self, generator: torch.Generator) -> dict:
        c, s, d, N = self.config, self.shapes(), self.config.d, self.config.N
        log_dt = torch.rand(d, generator=generator, dtype=torch.float64) * (math.log(DT_MAX) - math.log(DT_MIN))
        log_dt = log_dt + math.log(DT_MIN)
        weights = {"embedding": normal(generator, s["embedding"]),
                "norm_in.weight": torch.ones(d, dtype=torch.float64),
                "norm_in.bias": torch.zeros(d, dtype=torch.float64),
                "A_log": log_dt[:, None] + torch.log(torch.arange(1, N + 1, dtype=torch.float64)),
                "B": torch.ones(N, dtype=torch.float64),
                "C": normal(generator, s["C"], N ** -0.5),
                "norm_out.weight": torch.ones(d, dtype=torch.float64),
                "norm_out.bias": torch.zeros(d, dtype=torch.float64),
                "head": uniform(generator, s["head"], d ** -0.5)}
        if c.conv:
            weights.update(conv_init(generator, "conv", d, c.conv))
        if c.gate:
            weights.update(gate_init(generator, d))
        return weights

    def buffers(self, lengths, device=None, dtype=torch.float32) -> dict:
        return {"pe_scale": pe_scales(self.config, lengths, device, dtype)}

    def kernel(self, params: dict, length: int) -> torch.Tensor:
        """K (R, d, L) = Σ_n C[c, n] B[n] e^{Λ[c, n] k}, k = 0..L−1."""
        A = -torch.exp(params["A_log"])                                          # (R, d, N)
        k = torch.arange(length, device=A.device, dtype=A.dtype)
        powers = torch.exp(A[..., None] * k)                                     # (R, d, N, L)
        weights = params["C"] * params["B"][:, None, :]                          # (R, d, N)
        return torch.einsum("rcn,rcnl->rcl", weights, powers)

    def logits(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        x = embed(tokens, params["embedding"])
        if self.config.pe:
            x = with_position(x, buffers["pe_scale"])
        xbar = layer_norm(x, params["norm_in.weight"], params["norm_in.bias"])    # (R, B, L, d)
        xhat = xbar
        if self.config.conv:
            xhat = F.silu(causal_conv(xbar, params["conv.weight"], params["conv.bias"]))
        conv = toeplitz(self.kernel(params, tokens.shape[2]))                     # (R, d, L, L)
        return readout(params, xbar, torch.einsum("rcts,rbsc->rbtc", conv, xhat), self.config.gate)

    def decays(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        """The multipliers e^{−λΔ_t} = e^{Λ} of Fig. 1 (Δ ≡ 1, the same at every step): (R, B, L, d, N)."""
        R, B, L = tokens.shape
        decay = torch.exp(-torch.exp(params["A_log"]))
        return decay[:, None, None].expand(R, B, L, *decay.shape[1:])


@dataclass(frozen=True)
class MambaS4DConfig(S4DConfig):
    """Mamba-S4D (App. D.3, Fig. 2): the Mamba block with convolution (k = 4) and gate, its mixer S4D."""

    name: ClassVar[str] = "mamba-s4d"
    conv: int = 4
    gate: bool = True


class StackedMambaS4D(StackedS4D):
    """R members of :class:`MambaS4DConfig`'s model."""

    config_class = MambaS4DConfig
