"""The 1-layer Mamba-2 of Tab. 2 (right; single head, no gate by default), stacked over ensemble members.

For one member, with x̄_t = LN_in(x_t) as in :mod:`ssm.models.mamba`:

    Δ_t = SoftPlus(w_Δ · x̄_t + b_Δ) ∈ R                                   (eq. 14c right: from x, not x̂)
    x̂_t = σ(conv_u(W_u x̄)[t]) ∈ R^d,  B_t = σ(conv_B(W_B x̄)[t]),  C_t = σ(conv_C(W_C x̄)[t]) ∈ R^N   (14b, d, e)
    h_t = e^{λ Δ_t} h_{t−1} + (Δ_t x̂_t) ⊗ B_t,   λ = −exp(A_log) ∈ R       (eq. 14f right: one scalar λ)
    y_t = h_t C_t + D ⊙ x̂_t,   logits_t = W_o LN_out(y_t)                  (optionally gated, eq. 14g)

σ = SiLU; each conv is causal and depthwise with kernel ``conv`` (0: the Linear maps alone, then σ). Parameters per
member: |V|·d_e + d·|V| + 2d (LN_in) + d + 1 (w_Δ, b_Δ) + d² + 2·N·d (W_u, W_B, W_C) + (d + 2N)(k + 1) (convs) + 1
(A_log) + d (D) + 2d (LN_out), plus d² + d with the gate. Initialisation as mamba_ssm's Mamba-2: λ = −A with
A ~ U[1, 16], b_Δ = SoftPlus⁻¹(Δ₀) with Δ₀ ~ LogUniform[10⁻³, 10⁻¹], D = 1; Linear and conv weights as PyTorch's.

The members run as one scan (``delta_mode="scalar"``) with the members as the groups: u (batch, R_m·d, L),
Δ (batch, R_m, L), A (R_m·d, N) (each member's λ repeated), B, C (batch, R_m, N, L).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from kernels import selective_scan

from .blocks import causal_conv, conv_init, conv_shapes, gate_init, gate_shapes, readout
from .mamba import DT_FLOOR, DT_MAX, DT_MIN, from_channels, to_channels
from .stacked import SSMConfig, StackedModel, embed, layer_norm, linear, normal, pe_scales, uniform, with_position

A_MIN, A_MAX = 1.0, 16.0


@dataclass(frozen=True)
class Mamba2Config(SSMConfig):
    """1-layer single-head Mamba-2 (Tab. 2 right), no gate by default (Fig. 2); convolutions of kernel 4."""

    name: ClassVar[str] = "mamba2"
    conv: int = 4


class StackedMamba2(StackedModel):
    """R members of :class:`Mamba2Config`'s model (see the module docstring)."""

    config_class = Mamba2Config
    backend = "auto"

    def widths(self) -> dict:
        """Output width of each branch's Linear and convolution."""
        return {"u": self.config.d, "B": self.config.N, "C": self.config.N}

    def shapes(self) -> dict:
        c, V = self.config, self.vocab_size
        d, k = c.d, c.conv
        shapes = {"embedding": (V, d - 1 if c.pe else d), "norm_in.weight": (d,), "norm_in.bias": (d,),
                  "dt_proj.weight": (1, d), "dt_proj.bias": (1,), "A_log": (1,), "D": (d,),
                  "norm_out.weight": (d,), "norm_out.bias": (d,), "head": (self.num_classes, d)}
        for b, w in self.widths().items():
            shapes[f"{b}_proj"] = (w, d)
            if k:
                shapes.update(conv_shapes(f"conv_{b}", w, k))
        return {**shapes, **(gate_shapes(d) if c.gate else {})}

    def init_member(self, generator: torch.Generator) -> dict:
        c, s, d = self.config, self.shapes(), self.config.d
        log_dt = torch.rand(1, generator=generator, dtype=torch.float64) * (math.log(DT_MAX) - math.log(DT_MIN))
        dt = torch.exp(log_dt + math.log(DT_MIN)).clamp(min=DT_FLOOR)
        a = A_MIN + (A_MAX - A_MIN) * torch.rand(1, generator=generator, dtype=torch.float64)
        weights = {"embedding": normal(generator, s["embedding"]),
                   "norm_in.weight": torch.ones(d, dtype=torch.float64),
                   "norm_in.bias": torch.zeros(d, dtype=torch.float64),
                   "dt_proj.weight": uniform(generator, (1, d), d ** -0.5),
                   "dt_proj.bias": dt + torch.log(-torch.expm1(-dt)),
                   "A_log": torch.log(a), "D": torch.ones(d, dtype=torch.float64),
                   "norm_out.weight": torch.ones(d, dtype=torch.float64),
                   "norm_out.bias": torch.zeros(d, dtype=torch.float64),
                   "head": uniform(generator, s["head"], d ** -0.5)}
        for b, w in self.widths().items():
            weights[f"{b}_proj"] = uniform(generator, (w, d), d ** -0.5)
            if c.conv:
                weights.update(conv_init(generator, f"conv_{b}", w, c.conv))
        if c.gate:
            weights.update(gate_init(generator, d))
        return weights

    def buffers(self, lengths, device=None, dtype=torch.float32) -> dict:
        return {"pe_scale": pe_scales(self.config, lengths, device, dtype)}

    def branch(self, params: dict, xbar: torch.Tensor, b: str) -> torch.Tensor:
        """σ(conv_b(W_b x̄)) for b ∈ {u, B, C} (eq. 14b, d, e right): (R, batch, L, width)."""
        z = linear(xbar, params[f"{b}_proj"])
        if self.config.conv:
            z = causal_conv(z, params[f"conv_{b}.weight"], params[f"conv_{b}.bias"])
        return F.silu(z)

    def selection(self, params: dict, tokens: torch.Tensor, buffers: dict):
        """x̄, x̂ (R, B, L, d), Δ (R, B, L), B_t and C_t (R, B, L, N)."""
        x = embed(tokens, params["embedding"])
        if self.config.pe:
            x = with_position(x, buffers["pe_scale"])
        xbar = layer_norm(x, params["norm_in.weight"], params["norm_in.bias"])
        delta = F.softplus(linear(xbar, params["dt_proj.weight"], params["dt_proj.bias"]))[..., 0]
        return xbar, self.branch(params, xbar, "u"), delta, self.branch(params, xbar, "B"), \
            self.branch(params, xbar, "C")

    def logits(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        members, d, N = tokens.shape[0], self.config.d, self.config.N
        xbar, xhat, delta, Bt, Ct = self.selection(params, tokens, buffers)
        A = (-torch.exp(params["A_log"]))[:, :, None].expand(members, d, N).reshape(members * d, N)
        y = selective_scan(to_channels(xhat), delta.permute(1, 0, 2).contiguous(), A,
                           Bt.permute(1, 0, 3, 2).contiguous(), Ct.permute(1, 0, 3, 2).contiguous(),
                           params["D"].reshape(-1), delta_mode="scalar", backend=self.backend)
        return readout(params, xbar, from_channels(y, members), self.config.gate)

    def decays(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        """The multipliers e^{λΔ_t}, one per step: (R, B, L)."""
        delta = self.selection(params, tokens, buffers)[2]
        return torch.exp(-torch.exp(params["A_log"])[:, None, None] * delta)
