"""The simplified Mamba of the mechanistic study (its Sec. 2.2), stacked over ensemble members.

For one member on tokens x_t ∈ V (|V| = V tokens, d = 2V):

    x̂_t = [e_{x_{t−1}}; e_{x_t}] ∈ R^{2V}            fixed one-hot embedding and pair-concatenating convolution
                                                     (e_{x_0} of the first step's predecessor is 0)
    Δ_t = SoftPlus(W_Δ x̂_t) ∈ R^{2V}                W_Δ ∈ R^{2V×2V} trained, no bias
    h_t = e^{Λ ⊙ (Δ_t ⊗ 1_N)} ⊙ h_{t−1} + (Δ_t ⊙ x̂_t) ⊗ B(x_t),   Λ = −exp(A_log) ∈ R^{2V×N} trained
    y_t = h_t C(x_t) ∈ R^{2V},   logits_t = [−I  I] y_t = y_t[V:] − y_t[:V] ∈ R^V      fixed read-out, no gate

With ``learn_bc=False`` (the study's |K| = 1 model, N = 1) B = C = 1 are fixed; with ``learn_bc`` (|K| = 2) B(x_t)
and C(x_t) are learned per token, tables B, C ∈ R^{V×N}, or (``bc_of="pair"``) as linear maps of the pair x̂_t,
B_t = W_B x̂_t with W_B ∈ R^{N×2V} stored as B ∈ R^{2V×N} (the study writes B(x_t) but discusses B([e_k; e_v]),
its B-8: only the pair lets the key choose where the value is written). ``learn_head`` replaces the fixed read-out by a learned
W_o ∈ R^{V×2V} (U(±(2V)^{−1/2})), the lab's reading of the study's "unconstrained" model of its Fig. 6, whose
W_o it compares with [−I  I]. Trainable parameters per member: 4V² + 2V·N (+ 2V·N).
Initialisation (the study states none): W_Δ ~ U(±(2V)^{−1/2}) as a Linear (``w_init="uniform"``) or W_Δ = 0 as its
Lemma 1 starts (``"zero"``), A_log = log(1..N) per channel (Λ = −1 at N = 1), B, C ~ N(0, 1).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from kernels import selective_scan
from signals.checks import check_choice, check_int

from .mamba import from_channels, to_channels
from .stacked import StackedModel, linear, normal, uniform

W_INITS = ("uniform", "zero")
BC_OF = ("token", "pair")


@dataclass(frozen=True)
class SimpleMambaConfig:
    """The study's simplified Mamba: d = 2|V| (fixed by the task's vocabulary), state size ``N``, ``learn_bc``."""

    name: ClassVar[str] = "mamba-simple"
    d: int = 16
    N: int = 1
    learn_bc: bool = False
    w_init: str = "uniform"
    learn_head: bool = False
    bc_of: str = "token"

    def __post_init__(self):
        check_int("d", self.d, 2)
        check_int("N", self.N)
        check_choice("w_init", self.w_init, W_INITS)
        check_choice("bc_of", self.bc_of, BC_OF)
        if self.bc_of == "pair" and not self.learn_bc:
            raise ValueError("bc_of 'pair' makes B and C linear maps of x̂: it needs learn_bc")
        for name in ("learn_bc", "learn_head"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.N > 1 and not self.learn_bc:
            raise ValueError(f"N = {self.N} states with B = C = 1 fixed are copies of one: use learn_bc with N > 1")

    def to_dict(self) -> dict:
        d = {"name": self.name, **dataclasses.asdict(self)}
        if not self.learn_head:
            del d["learn_head"]
        if self.bc_of == "token":
            del d["bc_of"]
        return d

    @property
    def label(self) -> str:
        return self.name

    def describe(self) -> str:
        bc = (", learned B, C" + (" of the pair x̂" if self.bc_of == "pair" else " per token")) if self.learn_bc \
            else ", B = C = 1"
        return (f"{self.name} d={self.d} N={self.N}" + bc
                + (", learned read-out" if self.learn_head else ""))


class StackedSimpleMamba(StackedModel):
    """R members of :class:`SimpleMambaConfig`'s model (see the module docstring)."""

    config_class = SimpleMambaConfig
    backend = "auto"

    def __init__(self, config, *, vocab_size: int, num_classes: int, length: int):
        super().__init__(config, vocab_size=vocab_size, num_classes=num_classes, length=length)
        if config.d != 2 * vocab_size or num_classes != vocab_size:
            raise ValueError(f"mamba-simple reads pairs of one-hot tokens and writes one logit per token: it needs "
                             f"d = 2|V| = {2 * vocab_size} and as many classes as tokens, got d={config.d}, "
                             f"{num_classes} classes")

    def shapes(self) -> dict:
        c, V = self.config, self.vocab_size
        rows = V if c.bc_of == "token" else c.d
        bc = {"B": (rows, c.N), "C": (rows, c.N)} if c.learn_bc else {}
        head = {"head": (V, c.d)} if c.learn_head else {}
        return {"W_delta": (c.d, c.d), "A_log": (c.d, c.N), **bc, **head}

    def init_member(self, generator: torch.Generator) -> dict:
        c, s = self.config, self.shapes()
        w = {"W_delta": uniform(generator, s["W_delta"], c.d ** -0.5) if c.w_init == "uniform"
             else torch.zeros(s["W_delta"], dtype=torch.float64),
             "A_log": torch.log(torch.arange(1, c.N + 1, dtype=torch.float64)).expand(c.d, c.N).clone()}
        if c.learn_bc:
            w.update(B=normal(generator, s["B"]), C=normal(generator, s["C"]))
        if c.learn_head:
            w["head"] = uniform(generator, s["head"], c.d ** -0.5)
        return w

    def inputs(self, tokens: torch.Tensor, dtype) -> torch.Tensor:
        """x̂ (R, B, L, 2V): the one-hot pair [e_{x_{t−1}}; e_{x_t}]."""
        e = F.one_hot(tokens, self.vocab_size).to(dtype)
        prev = F.pad(e, (0, 0, 1, 0))[:, :, :-1]
        return torch.cat([prev, e], dim=-1)

    def selection(self, params: dict, tokens: torch.Tensor):
        """x̂ (R, B, L, d), Δ (R, B, L, d), B_t and C_t (R, B, L, N)."""
        dtype = params["W_delta"].dtype
        xhat = self.inputs(tokens, dtype)
        delta = F.softplus(linear(xhat, params["W_delta"]))
        if self.config.learn_bc:
            pick = F.one_hot(tokens, self.vocab_size).to(dtype) if self.config.bc_of == "token" else xhat
            return xhat, delta, linear(pick, params["B"].transpose(1, 2)), linear(pick, params["C"].transpose(1, 2))
        ones = torch.ones(*tokens.shape, self.config.N, dtype=dtype, device=tokens.device)
        return xhat, delta, ones, ones

    def logits(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        members, V, N = tokens.shape[0], self.vocab_size, self.config.N
        xhat, delta, Bt, Ct = self.selection(params, tokens)
        A = -torch.exp(params["A_log"]).reshape(-1, N)
        y = selective_scan(to_channels(xhat), to_channels(delta), A, Bt.permute(1, 0, 3, 2).contiguous(),
                           Ct.permute(1, 0, 3, 2).contiguous(), delta_mode="channel", backend=self.backend)
        y = from_channels(y, members)
        return linear(y, params["head"]) if self.config.learn_head else y[..., V:] - y[..., :V]

    def decays(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        """The forgetting factors e^{Λ ⊙ Δ_t}: (R, B, L, d, N)."""
        _, delta, _, _ = self.selection(params, tokens)
        return torch.exp(-torch.exp(params["A_log"])[:, None, None] * delta[..., None])
