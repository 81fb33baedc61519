"""The 1-layer Transformer baseline of Tab. 1 and Tables A.1–A.2, stacked over ensemble members.

The paper states only "l = 1, d" and, through its parameter counts growing by d per unit of T, learned absolute
positional embeddings. The lab's choice (docs/training.md has the table of how close its counts come):

    x_t = E[token_t] + P[t],                           E ∈ R^{|V|×d}, P ∈ R^{T×d}
    x   = x + W_O · CausalAttention(LN_1(x))           ``heads`` heads (default 1), Q, K, V, O with biases
    x   = x + W_2 · GELU(W_1 · LN_2(x) + b_1) + b_2     MLP hidden width ``mlp`` (default d)
    logits_t = W_o x_t + b_o                           untied head with bias, no final norm

Parameters per member: 2|V|d + |V| + T·d + 4d² + 4d (attention) + 2d·h + h + d (MLP) + 4d (two LayerNorms).
Initialisation as PyTorch's modules: E, P ~ N(0, 1); the attention in-projection Xavier-uniform, its biases 0,
its out-projection and the other linear maps U(±fan_in^{−1/2}) with biases U(±fan_in^{−1/2}).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from signals.checks import check_int

from .stacked import StackedModel, embed, layer_norm, linear, normal, uniform


@dataclass(frozen=True)
class TransformerConfig:
    """1-layer Transformer: width ``d``, ``heads`` attention heads, MLP hidden width ``mlp`` (None: d)."""

    name: ClassVar[str] = "transformer"
    d: int = 16
    heads: int = 1
    mlp: int | None = None

    def __post_init__(self):
        check_int("d", self.d, 1)
        check_int("heads", self.heads, 1)
        if self.d % self.heads:
            raise ValueError(f"heads must divide d={self.d}, got heads={self.heads}")
        if self.mlp is not None:
            check_int("mlp", self.mlp, 1)

    @property
    def hidden(self) -> int:
        return self.d if self.mlp is None else self.mlp

    @property
    def label(self) -> str:
        return self.name

    def to_dict(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}

    def describe(self) -> str:
        return f"transformer d={self.d} heads={self.heads} mlp={self.hidden}"


class StackedTransformer(StackedModel):
    """R members of :class:`TransformerConfig`'s model with stacked weights (see the module docstring).

    The positional table has ``length`` rows; a member trained on shorter sequences uses (and counts) only its
    first T rows."""

    config_class = TransformerConfig

    def shapes(self) -> dict:
        d, h, V, C = self.config.d, self.config.hidden, self.vocab_size, self.num_classes
        return {"embedding": (V, d), "position": (self.length, d), "norm1.weight": (d,), "norm1.bias": (d,),
                "attn.in_proj": (3 * d, d), "attn.in_bias": (3 * d,), "attn.out_proj": (d, d),
                "attn.out_bias": (d,), "norm2.weight": (d,), "norm2.bias": (d,), "mlp.fc1": (h, d),
                "mlp.fc1_bias": (h,), "mlp.fc2": (d, h), "mlp.fc2_bias": (d,), "head": (C, d), "head_bias": (C,)}

    def parameters(self, length: int | None = None) -> int:
        length = self.length if length is None else check_int("length", length, 1)
        return super().parameters() - (self.length - length) * self.config.d

    def init_member(self, generator: torch.Generator) -> dict:
        s, d, h = self.shapes(), self.config.d, self.config.hidden
        return {"embedding": normal(generator, s["embedding"]), "position": normal(generator, s["position"]),
                "norm1.weight": torch.ones(d, dtype=torch.float64), "norm1.bias": torch.zeros(d, dtype=torch.float64),
                "attn.in_proj": uniform(generator, s["attn.in_proj"], math.sqrt(6 / (4 * d))),
                "attn.in_bias": torch.zeros(3 * d, dtype=torch.float64),
                "attn.out_proj": uniform(generator, s["attn.out_proj"], d ** -0.5),
                "attn.out_bias": torch.zeros(d, dtype=torch.float64),
                "norm2.weight": torch.ones(d, dtype=torch.float64), "norm2.bias": torch.zeros(d, dtype=torch.float64),
                "mlp.fc1": uniform(generator, s["mlp.fc1"], d ** -0.5),
                "mlp.fc1_bias": uniform(generator, s["mlp.fc1_bias"], d ** -0.5),
                "mlp.fc2": uniform(generator, s["mlp.fc2"], h ** -0.5),
                "mlp.fc2_bias": uniform(generator, s["mlp.fc2_bias"], h ** -0.5),
                "head": uniform(generator, s["head"], d ** -0.5),
                "head_bias": uniform(generator, s["head_bias"], d ** -0.5)}

    def attention(self, params: dict, x: torch.Tensor) -> torch.Tensor:
        """Causal multi-head self-attention with output projection: (R, B, L, d) → (R, B, L, d)."""
        R, B, L, d = x.shape
        H = self.config.heads
        q, k, v = linear(x, params["attn.in_proj"], params["attn.in_bias"]).split(d, dim=-1)
        q, k, v = (z.reshape(R, B, L, H, d // H).transpose(2, 3) for z in (q, k, v))   # (R, B, H, L, d/H)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // H)
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(2, 3).reshape(R, B, L, d)
        return linear(out, params["attn.out_proj"], params["attn.out_bias"])

    def logits(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        L = tokens.shape[2]
        x = embed(tokens, params["embedding"]) + params["position"][:, None, :L]
        x = x + self.attention(params, layer_norm(x, params["norm1.weight"], params["norm1.bias"]))
        m = layer_norm(x, params["norm2.weight"], params["norm2.bias"])
        m = linear(F.gelu(linear(m, params["mlp.fc1"], params["mlp.fc1_bias"])), params["mlp.fc2"],
                   params["mlp.fc2_bias"])
        return linear(x + m, params["head"], params["head_bias"])
