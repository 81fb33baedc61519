"""The 1-layer model of Tab. 2: embedding → short convolution → SSM mixer → gate → output layer.

    x_t      = E[token_t] ∈ R^d                       (with positional encoding: [E[token_t]; t] ∈ R^d, Tab. 1)
    x̂_t      = σ(conv(x)[t])                          (eq. 14b; absent when ``conv_kernel`` is None)
    y_t      = mixer(x̂)[t]                            (eq. 6, 14f, 15; Mamba-2 convolves inside its mixer)
    ỹ_t      = σ_g(W_g x_t + b_g) ⊙ y_t               (eq. 14g; absent when ``gate=False``)
    logits_t = W_o ỹ_t + b_o ∈ R^{num_classes}

Positional encoding (Tab. 1: "PE encodes the position in the last element of the embedding, resulting in |V| fewer
parameters"): the embedding table has d − 1 columns and the last element of x_t is the index t = 1..L, computed by
the Prop. 1 layer (:class:`ssm.layers.TimeRecovery`), as eq. (32) of Cor. 2 reads it.
"""
from __future__ import annotations

import torch
from torch import nn

from signals.checks import check_int

from ..layers import MIXERS, Gate, ShortConv, TimeRecovery, make_mixer


class OneLayerModel(nn.Module):
    """A 1-layer Mamba-style model for token tasks (KEEP n-TH, MQAR, INDUCTION HEADS).

    Parameters
    ----------
    vocab_size : number of input tokens |V_in|; tokens are integers in [0, vocab_size).
    d : embedding size (including the positional element when ``positional_encoding``).
    N : state size.
    num_classes : number of output logits (default ``vocab_size``).
    mixer : one of ``"s4d"``, ``"mamba"`` (S6), ``"mamba2"``, ``"mamba_dt"`` (Mamba-Δ⊤).
    conv_kernel : kernel size of the short convolution, or None for none (Tab. 1's models have none). For
        ``"mamba2"`` it is the kernel of the mixer's three own convolutions (and must be given).
    conv_activation : σ of the convolution, ``"silu"``, ``"relu"`` or ``"none"``.
    gate : use the gate of eq. (14g).
    gate_activation : σ_g of the gate.
    positional_encoding : put the position t in the last embedding element.
    s4d_complex : complex Λ, B, C for the S4D mixer.

    Attributes ``embedding``, ``conv`` (or None), ``mixer``, ``gate`` (or None), ``out`` hold the layers; the
    constructions of :mod:`ssm.constructions` write their weights directly.

    ``forward(tokens)``: tokens (batch, L) integer → logits (batch, L, num_classes).
    """

    def __init__(self, vocab_size: int, d: int, N: int, *, num_classes: int | None = None, mixer: str = "mamba",
                 conv_kernel: int | None = 4, conv_activation: str = "silu", gate: bool = True,
                 gate_activation: str = "silu", positional_encoding: bool = False, s4d_complex: bool = True):
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        for name, value in (("vocab_size", vocab_size), ("d", d), ("N", N)):
            check_int(name, value)
        if positional_encoding and d < 2:
            raise ValueError(f"d must be at least 2 with positional encoding (one element holds t), got d={d}")
        if mixer == "mamba2" and not conv_kernel:
            raise ValueError("mixer 'mamba2' needs conv_kernel (its three convolutions are part of the mixer)")
        self.vocab_size = vocab_size
        self.num_classes = vocab_size if num_classes is None else num_classes
        self.d, self.N = d, N
        self.mixer_kind = mixer
        self.positional_encoding = positional_encoding
        self.embedding = nn.Embedding(vocab_size, d - 1 if positional_encoding else d)
        self.time = TimeRecovery(normalize=False) if positional_encoding else None
        self.conv = (ShortConv(d, conv_kernel, conv_activation) if conv_kernel and mixer != "mamba2" else None)
        self.mixer = make_mixer(mixer, d, N, conv_kernel=conv_kernel or 1, conv_activation=conv_activation,
                                s4d_complex=s4d_complex)
        self.gate = Gate(d, gate_activation) if gate else None
        self.out = nn.Linear(d, self.num_classes)

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise ValueError unless ``tokens`` is a (batch, L) integer tensor with values in [0, vocab_size)."""
        if tokens.dim() != 2 or tokens.shape[1] < 1:
            raise ValueError(f"tokens must have shape (batch, L) with L ≥ 1, got {tuple(tokens.shape)}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be integers, got dtype {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"tokens must lie in [0, {self.vocab_size}), got values in "
                             f"[{int(tokens.min())}, {int(tokens.max())}]")

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """x: (batch, d, L), the embedded sequence (with the position t in the last element under PE)."""
        self.check_tokens(tokens)
        x = self.embedding(tokens.long())                                   # (batch, L, d or d − 1)
        if self.time is not None:
            t = self.time(tokens.shape[0], tokens.shape[1], device=x.device, dtype=x.dtype)
            x = torch.cat([x, t[..., None]], dim=-1)
        return x.transpose(1, 2)

    def forward_embedded(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, L, num_classes) from an embedded sequence x: (batch, d, L)."""
        xh = self.conv(x) if self.conv is not None else x
        y = self.mixer(xh)
        if self.gate is not None:
            y = self.gate(x, y)
        return self.out(y.transpose(1, 2))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(tokens))

    def num_parameters(self) -> int:
        """Number of real parameters (a complex entry counts two)."""
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in self.parameters())

    def sizes(self) -> dict:
        """``{"d", "N", "parameters"}`` of the model."""
        return {"d": self.d, "N": self.N, "parameters": self.num_parameters()}
