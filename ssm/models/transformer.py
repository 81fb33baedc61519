"""The Transformer baselines, stacked over ensemble members: the 1-layer model of Tab. 1 and Tables A.1–A.2, and
the 1- and 2-layer models of the mechanistic study's Table 1 (with a short convolution and RoPE).

The paper states only "l = 1, d" and, through its parameter counts growing by d per unit of T, learned absolute
positional embeddings. The lab's choice (docs/training.md has the table of how close its counts come):

    x_t = E[token_t] + P[t],                           E ∈ R^{|V|×d}, P ∈ R^{T×d}
    x   = x + W_O · CausalAttention(LN_1(x))           ``heads`` heads (default 1), Q, K, V, O with biases
    x   = x + W_2 · GELU(W_1 · LN_2(x) + b_1) + b_2     MLP hidden width ``mlp`` (default d)
    logits_t = W_o x_t + b_o                           untied head with bias, no final norm

Parameters per member: 2|V|d + |V| + T·d + 4d² + 4d (attention) + 2d·h + h + d (MLP) + 4d (two LayerNorms).
Initialisation as PyTorch's modules: E, P ~ N(0, 1); the attention in-projection Xavier-uniform, its biases 0,
its out-projection and the other linear maps U(±fan_in^{−1/2}) with biases U(±fan_in^{−1/2}).

Options for the mechanistic study's Table 1 (each off by default, and then absent from the record): ``layers``
blocks (block l > 0 names its weights ``l{l}.…``); ``position`` ``"learned"`` (P above), ``"none"`` or ``"rope"``
(rotary embeddings on q and k, base 10 000, rotating the pairs (2i, 2i + 1) of each head by t·10000^{−2i/(d/H)});
``conv = k``: a causal depthwise convolution of kernel k with bias on the embeddings, before the first block
(:mod:`ssm.models.blocks`, no activation, residual-free).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from signals.checks import check_int

from signals.checks import check_choice

from .blocks import causal_conv, conv_init, conv_shapes
from .stacked import StackedModel, embed, layer_norm, linear, normal, uniform

POSITIONS = ("learned", "none", "rope")


@dataclass(frozen=True)
class TransformerConfig:
    """Transformer: width ``d``, ``heads`` attention heads, MLP hidden width ``mlp`` (None: d), ``layers`` blocks,
    ``position`` encoding, a short convolution of kernel ``conv`` (0: none)."""

    name: ClassVar[str] = "transformer"
    d: int = 16
    heads: int = 1
    mlp: int | None = None
    layers: int = 1
    position: str = "learned"
    conv: int = 0

    def __post_init__(self):
        check_int("d", self.d, 1)
        check_int("heads", self.heads, 1)
        check_int("layers", self.layers, 1)
        check_int("conv", self.conv, 0)
        check_choice("position", self.position, POSITIONS)
        if self.d % self.heads:
            raise ValueError(f"heads must divide d={self.d}, got heads={self.heads}")
        if self.position == "rope" and (self.d // self.heads) % 2:
            raise ValueError(f"RoPE rotates pairs: the head width d/heads = {self.d // self.heads} must be even")
        if self.mlp is not None:
            check_int("mlp", self.mlp, 1)

    @property
    def hidden(self) -> int:
        return self.d if self.mlp is None else self.mlp

    @property
    def label(self) -> str:
        return self.name

    def to_dict(self) -> dict:
        """The recorded configuration; the options at their defaults are left out, so the 1-layer model's records
        keep the keys they had before the options existed."""
        d = {"name": self.name, **dataclasses.asdict(self)}
        for name, default in (("layers", 1), ("position", "learned"), ("conv", 0)):
            if d[name] == default:
                del d[name]
        return d

    def describe(self) -> str:
        extra = (f", {self.layers} layers" if self.layers > 1 else "") + \
            (f", PE {self.position}" if self.position != "learned" else "") + (f", conv {self.conv}" if self.conv else "")
        return f"transformer d={self.d} heads={self.heads} mlp={self.hidden}{extra}"


class StackedTransformer(StackedModel):
    """R members of :class:`TransformerConfig`'s model with stacked weights (see the module docstring).

    The positional table has ``length`` rows; a member trained on shorter sequences uses (and counts) only its
    first T rows."""

    config_class = TransformerConfig

    @staticmethod
    def prefix(layer: int) -> str:
        return "" if layer == 0 else f"l{layer}."

    def block_shapes(self, layer: int) -> dict:
        d, h, p = self.config.d, self.config.hidden, self.prefix(layer)
        return {f"{p}norm1.weight": (d,), f"{p}norm1.bias": (d,), f"{p}attn.in_proj": (3 * d, d),
                f"{p}attn.in_bias": (3 * d,), f"{p}attn.out_proj": (d, d), f"{p}attn.out_bias": (d,),
                f"{p}norm2.weight": (d,), f"{p}norm2.bias": (d,), f"{p}mlp.fc1": (h, d), f"{p}mlp.fc1_bias": (h,),
                f"{p}mlp.fc2": (d, h), f"{p}mlp.fc2_bias": (d,)}

    def shapes(self) -> dict:
        c, V, C = self.config, self.vocab_size, self.num_classes
        out = {"embedding": (V, c.d)}
        if c.position == "learned":
            out["position"] = (self.length, c.d)
        out.update(self.block_shapes(0))
        out.update({"head": (C, c.d), "head_bias": (C,)})
        for layer in range(1, c.layers):
            out.update(self.block_shapes(layer))
        if c.conv:
            out.update(conv_shapes("conv", c.d, c.conv))
        return out

    def parameters(self, length: int | None = None) -> int:
        length = self.length if length is None else check_int("length", length, 1)
        unused = (self.length - length) * self.config.d if self.config.position == "learned" else 0
        return super().parameters() - unused

    def block_init(self, generator: torch.Generator, layer: int) -> dict:
        d, h, p = self.config.d, self.config.hidden, self.prefix(layer)
        s = self.block_shapes(layer)
        return {f"{p}norm1.weight": torch.ones(d, dtype=torch.float64),
                f"{p}norm1.bias": torch.zeros(d, dtype=torch.float64),
                f"{p}attn.in_proj": uniform(generator, s[f"{p}attn.in_proj"], math.sqrt(6 / (4 * d))),
                f"{p}attn.in_bias": torch.zeros(3 * d, dtype=torch.float64),
                f"{p}attn.out_proj": uniform(generator, s[f"{p}attn.out_proj"], d ** -0.5),
                f"{p}attn.out_bias": torch.zeros(d, dtype=torch.float64),
                f"{p}norm2.weight": torch.ones(d, dtype=torch.float64),
                f"{p}norm2.bias": torch.zeros(d, dtype=torch.float64),
                f"{p}mlp.fc1": uniform(generator, s[f"{p}mlp.fc1"], d ** -0.5),
                f"{p}mlp.fc1_bias": uniform(generator, s[f"{p}mlp.fc1_bias"], d ** -0.5),
                f"{p}mlp.fc2": uniform(generator, s[f"{p}mlp.fc2"], h ** -0.5),
                f"{p}mlp.fc2_bias": uniform(generator, s[f"{p}mlp.fc2_bias"], h ** -0.5)}

    def init_member(self, generator: torch.Generator) -> dict:
        """The weights in the order the 1-layer model always drew them; later blocks and the convolution after."""
        c, s = self.config, self.shapes()
        w = {"embedding": normal(generator, s["embedding"])}
        if c.position == "learned":
            w["position"] = normal(generator, s["position"])
        w.update(self.block_init(generator, 0))
        w.update({"head": uniform(generator, s["head"], c.d ** -0.5),
                  "head_bias": uniform(generator, s["head_bias"], c.d ** -0.5)})
        for layer in range(1, c.layers):
            w.update(self.block_init(generator, layer))
        if c.conv:
            w.update(conv_init(generator, "conv", c.d, c.conv))
        return w

    def rotate(self, z: torch.Tensor) -> torch.Tensor:
        """RoPE on q or k (R, B, H, L, d/H): pair (2i, 2i + 1) at position t turned by t·10000^{−2i/(d/H)}."""
        L, w = z.shape[-2], z.shape[-1]
        freq = 10000.0 ** (-torch.arange(0, w, 2, device=z.device, dtype=z.dtype) / w)
        angle = torch.arange(L, device=z.device, dtype=z.dtype)[:, None] * freq           # (L, w/2)
        cos, sin = torch.cos(angle), torch.sin(angle)
        even, odd = z[..., 0::2], z[..., 1::2]
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)

    def attention(self, params: dict, x: torch.Tensor, p: str = "") -> torch.Tensor:
        """Causal multi-head self-attention with output projection: (R, B, L, d) → (R, B, L, d)."""
        R, B, L, d = x.shape
        H = self.config.heads
        q, k, v = linear(x, params[f"{p}attn.in_proj"], params[f"{p}attn.in_bias"]).split(d, dim=-1)
        q, k, v = (z.reshape(R, B, L, H, d // H).transpose(2, 3) for z in (q, k, v))   # (R, B, H, L, d/H)
        if self.config.position == "rope":
            q, k = self.rotate(q), self.rotate(k)
        # softmax(q kᵀ/√(d/H) + causal mask) v without the (L, L) scores in memory (on CUDA the fused kernel)
        out = F.scaled_dot_product_attention(*(z.reshape(R * B, H, L, d // H) for z in (q, k, v)), is_causal=True)
        out = out.reshape(R, B, H, L, d // H).transpose(2, 3).reshape(R, B, L, d)
        return linear(out, params[f"{p}attn.out_proj"], params[f"{p}attn.out_bias"])

    def block(self, params: dict, x: torch.Tensor, layer: int) -> torch.Tensor:
        """Pre-LN attention and MLP, each with its residual."""
        p = self.prefix(layer)
        x = x + self.attention(params, layer_norm(x, params[f"{p}norm1.weight"], params[f"{p}norm1.bias"]), p)
        m = layer_norm(x, params[f"{p}norm2.weight"], params[f"{p}norm2.bias"])
        m = linear(F.gelu(linear(m, params[f"{p}mlp.fc1"], params[f"{p}mlp.fc1_bias"])), params[f"{p}mlp.fc2"],
                   params[f"{p}mlp.fc2_bias"])
        return x + m

    def logits(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        L = tokens.shape[2]
        x = embed(tokens, params["embedding"])
        if self.config.position == "learned":
            x = x + params["position"][:, None, :L]
        if self.config.conv:
            x = causal_conv(x, params["conv.weight"], params["conv.bias"])
        for layer in range(self.config.layers):
            x = self.block(params, x, layer)
        return linear(x, params["head"], params["head_bias"])
