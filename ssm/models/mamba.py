"""The 1-layer Mamba of Tab. 1 (S6 mixer; no convolution and no gate for KEEP n-TH, both optional) and
Mamba-Δ⊤ (eq. 15), stacked over ensemble members.

For one member, with x_t = E[token_t] ∈ R^d (or [E[token_t]; p_t] with positional encoding, E ∈ R^{|V|×(d−1)}):

    x̄_t = LN_in(x_t)                                                  (LayerNorm, weight and bias)
    [δ_t; B_t; C_t] = W_x x̄_t,   δ_t ∈ R^R, B_t, C_t ∈ R^N            (x_proj, no bias; R = ⌈d/16⌉)
    Δ_t = SoftPlus(W_Δ δ_t + b_Δ) ∈ R^d                               (dt_proj; eq. 14c)
    h_t = e^{Λ ⊙ (Δ_t ⊗ 1_N)} ⊙ h_{t−1} + (Δ_t ⊙ x̄_t) ⊗ B_t,  Λ = −exp(A_log) ∈ R^{d×N}  (eq. 14f)
    y_t = h_t C_t + D ⊙ x̄_t                                            (eq. 14g without gate, skip D)
    logits_t = W_o LN_out(y_t) ∈ R^{|V|}                              (untied head, no bias)

Parameters per member (the formula that reproduces every "# prm." of Tables A.1–A.4):
|V|·d_e + d·|V| + d·N + d·(R + 2N) + R·d + d + 5d, d_e = d or d − 1, the 5d being D and the two LayerNorms.
Initialisation as mamba_ssm: A_log = log(1..N) per channel (S4D-real), D = 1, b_Δ = SoftPlus⁻¹(Δ₀) with
Δ₀ ~ LogUniform[10⁻³, 10⁻¹], W_Δ ~ U(±R^{−1/2}), W_x and W_o ~ U(±d^{−1/2}), E ~ N(0, 1).

The members run as one scan (:func:`kernels.selective_scan`, ``delta_mode="channel"``) with the members folded
into channel groups: u, Δ (batch, R_m·d, L), A (R_m·d, N), B, C grouped (batch, R_m, N, L).

With ``conv = k`` the mixer reads x̂ = SiLU(conv_k(x̄)) instead of x̄ (eq. 14b: Δ, B, C, u and the skip all come
from x̂), adding d·k + d parameters; with ``gate`` the output is SiLU(W_g x̄ + b_g) ⊙ y (eq. 14g), adding d² + d
(:mod:`ssm.models.blocks`). Their weights are drawn after the others, so a model without them draws exactly the
weights it drew before they existed.

Mamba-Δ⊤ (eq. 15, :class:`MambaDTConfig`): Δ_t = SoftPlus(W_Δ δ_t + b_Δ) ∈ R^N varies along the states, and the
input term has no Δ: h_t = e^{Λ ⊙ (1_d ⊗ Δ_t)} ⊙ h_{t−1} + x̂_t ⊗ B_t (the scan's ``"state"`` mode with
``input_delta=False``, Δ grouped per member); dt_proj is (N, R) with N biases.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from kernels import selective_scan

from .blocks import causal_conv, conv_init, conv_shapes, gate_init, gate_shapes, readout
from .stacked import (SSMConfig, StackedModel, embed, layer_norm, linear, normal, pe_scales, uniform,
                      with_position)

DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4


@dataclass(frozen=True)
class MambaConfig(SSMConfig):
    """1-layer Mamba (S6 mixer), Tab. 1 / Tables A.1–A.4 (no convolution, no gate) and Figs. 2, 3 (with them)."""

    name: ClassVar[str] = "mamba"

    @property
    def dt_rank(self) -> int:
        """R = ⌈d/16⌉, mamba_ssm's default rank of the Δ projection."""
        return math.ceil(self.d / 16)


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """(R, B, L, d) → (B, R·d, L): members folded into the scan's channel axis."""
    R, B, L, d = x.shape
    return x.permute(1, 0, 3, 2).reshape(B, R * d, L)


def from_channels(y: torch.Tensor, members: int) -> torch.Tensor:
    """(B, R·d, L) → (R, B, L, d)."""
    B, Rd, L = y.shape
    return y.reshape(B, members, Rd // members, L).permute(1, 0, 3, 2)


class StackedMamba(StackedModel):
    """R members of :class:`MambaConfig`'s model with stacked weights (see the module docstring)."""

    config_class = MambaConfig
    backend = "auto"

    def delta_size(self) -> int:
        """Entries of Δ_t: d (one per channel, eq. 14c)."""
        return self.config.d

    def shapes(self) -> dict:
        c = self.config
        d, N, R, V, K = c.d, c.N, c.dt_rank, self.vocab_size, self.delta_size()
        return {"embedding": (V, d - 1 if c.pe else d), "norm_in.weight": (d,), "norm_in.bias": (d,),
                "x_proj": (R + 2 * N, d), "dt_proj.weight": (K, R), "dt_proj.bias": (K,), "A_log": (d, N),
                "D": (d,), "norm_out.weight": (d,), "norm_out.bias": (d,), "head": (self.num_classes, d),
                **(conv_shapes("conv", d, c.conv) if c.conv else {}), **(gate_shapes(d) if c.gate else {})}

    def init_member(self, generator: torch.Generator) -> dict:
        c, s, d, N, R, K = self.config, self.shapes(), self.config.d, self.config.N, self.config.dt_rank, \
            self.delta_size()
        log_dt = torch.rand(K, generator=generator, dtype=torch.float64) * (math.log(DT_MAX) - math.log(DT_MIN))
        dt = torch.exp(log_dt + math.log(DT_MIN)).clamp(min=DT_FLOOR)
        weights = {"embedding": normal(generator, s["embedding"]),
                "norm_in.weight": torch.ones(d, dtype=torch.float64),
                "norm_in.bias": torch.zeros(d, dtype=torch.float64),
                "x_proj": uniform(generator, s["x_proj"], d ** -0.5),
                "dt_proj.weight": uniform(generator, s["dt_proj.weight"], R ** -0.5),
                "dt_proj.bias": dt + torch.log(-torch.expm1(-dt)),
                "A_log": torch.log(torch.arange(1, N + 1, dtype=torch.float64)).expand(d, N).clone(),
                "D": torch.ones(d, dtype=torch.float64),
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

    def features(self, params: dict, tokens: torch.Tensor, buffers: dict) -> tuple:
        """x̄ = LN_in(x) and the mixer's input x̂ = SiLU(conv(x̄)) (x̂ = x̄ without a convolution): (R, B, L, d)."""
        x = embed(tokens, params["embedding"])
        if self.config.pe:
            x = with_position(x, buffers["pe_scale"])
        xbar = layer_norm(x, params["norm_in.weight"], params["norm_in.bias"])
        if not self.config.conv:
            return xbar, xbar
        return xbar, F.silu(causal_conv(xbar, params["conv.weight"], params["conv.bias"]))

    def selection(self, params: dict, xhat: torch.Tensor):
        """Δ (R, B, L, K), B_t and C_t (R, B, L, N) of eq. (14c-e) from x̂ (R, B, L, d); K = :meth:`delta_size`."""
        R, N = self.config.dt_rank, self.config.N
        proj = linear(xhat, params["x_proj"])
        delta = F.softplus(linear(proj[..., :R], params["dt_proj.weight"], params["dt_proj.bias"]))
        return delta, proj[..., R:R + N], proj[..., R + N:]

    def scan(self, xhat, delta, A, Bt, Ct, D):
        """The S6 recurrence (eq. 14f) of every member as one grouped scan: (B, R·d, L)."""
        return selective_scan(to_channels(xhat), to_channels(delta), A, Bt, Ct, D, delta_mode="channel",
                              backend=self.backend)

    def logits(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        members = tokens.shape[0]
        xbar, xhat = self.features(params, tokens, buffers)
        delta, Bt, Ct = self.selection(params, xhat)
        A = -torch.exp(params["A_log"]).reshape(-1, self.config.N)
        y = self.scan(xhat, delta, A, Bt.permute(1, 0, 3, 2).contiguous(), Ct.permute(1, 0, 3, 2).contiguous(),
                      params["D"].reshape(-1))
        return readout(params, xbar, from_channels(y, members), self.config.gate)

    def decays(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        """The multipliers e^{−λΔ_t} = e^{Λ Δ_t} of Fig. 1: (R, B, L, d, N)."""
        delta, _, _ = self.selection(params, self.features(params, tokens, buffers)[1])
        return torch.exp(-torch.exp(params["A_log"])[:, None, None] * delta[..., None])


@dataclass(frozen=True)
class MambaDTConfig(MambaConfig):
    """1-layer Mamba-Δ⊤ (eq. 15): Δ per state; INDUCTION HEADS (Fig. 3, Lem. 3). Eq. 15 has no Δ on the input
    term; whether the trained models kept it is not stated, so ``input_delta=True`` puts it back (Δ_t ⊙ B_t)."""

    name: ClassVar[str] = "mamba-dt"
    input_delta: bool = False

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.input_delta, bool):
            raise ValueError(f"input_delta must be True or False, got {self.input_delta!r}")


class StackedMambaDT(StackedMamba):
    """R members of :class:`MambaDTConfig`'s model (see the module docstring)."""

    config_class = MambaDTConfig

    def delta_size(self) -> int:
        """Entries of Δ_t: N (one per state, eq. 15)."""
        return self.config.N

    def scan(self, xhat, delta, A, Bt, Ct, D):
        """The Mamba-Δ⊤ recurrence (eq. 15): Δ grouped (B, R, N, L), no Δ on the input term unless asked."""
        return selective_scan(to_channels(xhat), delta.permute(1, 0, 3, 2).contiguous(), A, Bt, Ct, D,
                              delta_mode="state", input_delta=self.config.input_delta, backend=self.backend)

    def decays(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        """The multipliers e^{Λ[c, n] Δ_t[n]}: (R, B, L, d, N)."""
        delta, _, _ = self.selection(params, self.features(params, tokens, buffers)[1])
        return torch.exp(-torch.exp(params["A_log"])[:, None, None] * delta[..., None, :])
