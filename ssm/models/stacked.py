"""Ensembles of one architecture with stacked weights: the building blocks every stacked model shares.

R members of one shape keep each weight as one tensor with a leading member axis, ``(R, *shape)``, and run as one
model: batched matmuls over the member axis, per-member LayerNorm, one-hot embedding lookups (a batched matmul,
deterministic in its backward pass), and a scan with the members folded into channel groups. Member r reads its
own batch: tokens are (R, batch, L) and logits (R, batch, L, classes). Nothing mixes members, so the gradient of
the sum of the members' losses with respect to member r's weights is the gradient of member r's loss alone.

A model's weights live in a plain ``dict`` name → tensor (the trainer owns them, and the optimizer updates them
in place); a model object holds only the shapes, the configuration and the code.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from typing import ClassVar

import torch

from signals.checks import check_choice, check_int

PE_SCALES = ("t/T", "t")
LN_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class SSMConfig:
    """A 1-layer SSM model of Tab. 1: embedding size ``d``, state size ``N``, positional encoding ``pe`` (the
    position in the last embedding element, scaled by ``pe_scale``: ``"t/T"`` → t/T ∈ (0, 1], as Thm. 1's time
    channel s ∈ [0, 1] (the default), or ``"t"`` → the index t = 1..T, as the Cor. 2 construction reads it).

    ``conv`` (kernel size k, 0 = none) and ``gate`` add the rest of the Mamba block of Tab. 2: x̂ = SiLU(conv(x̄))
    feeds the mixer (eq. 14b) and y is gated by SiLU(W_g x̄ + b_g) (eq. 14g); :mod:`ssm.models.blocks`. KEEP n-TH
    uses neither (App. D.2); the recall tasks use the convolution (App. D.3-D.4)."""

    name: ClassVar[str]
    d: int = 32
    N: int = 8
    pe: bool = False
    pe_scale: str = "t/T"
    conv: int = 0
    gate: bool = False

    def __post_init__(self):
        check_int("d", self.d, 1)
        check_int("N", self.N, 1)
        check_int("conv", self.conv, 0)
        check_choice("pe_scale", self.pe_scale, PE_SCALES)
        for name in ("pe", "gate"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.pe and self.d < 2:
            raise ValueError(f"d must be at least 2 with positional encoding (one element holds the position), "
                             f"got d={self.d}")

    def to_dict(self) -> dict:
        """The recorded configuration; ``conv`` and ``gate`` appear only where they are on, so the records of
        models without them keep the keys they had before the block's parts existed."""
        d = {"name": self.name, **dataclasses.asdict(self)}
        for name, off in (("conv", 0), ("gate", False)):
            if d[name] == off:
                del d[name]
        return d

    @property
    def label(self) -> str:
        """``mamba+pe`` style name of the variant (Tab. 1's column names)."""
        return self.name + ("+pe" if self.pe else "")

    def describe(self) -> str:
        pe = f", PE {self.pe_scale}" if self.pe else ""
        block = (f", conv {self.conv}" if self.conv else "") + (", gate" if self.gate else "")
        return f"{self.label} d={self.d} N={self.N}{pe}{block}"


class StackedModel(abc.ABC):
    """Base of the stacked models: shapes, seeded initialisation, member access.

    Subclasses define ``config_class``, :meth:`shapes`, :meth:`init_member` (one member's weights, float64 on the
    CPU, from a ``torch.Generator``), :meth:`logits` and :meth:`parameters`.

    Parameters
    ----------
    config : the model's config dataclass.
    vocab_size, num_classes : input tokens and output logits (from the task).
    length : the longest sequence the members see (members with shorter T are padded at the end; every layer is
        causal, so padding never reaches a scored position).
    """

    config_class: ClassVar[type]

    def __init__(self, config, *, vocab_size: int, num_classes: int, length: int):
        self.config = config
        self.vocab_size = check_int("vocab_size", vocab_size, 2)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.length = check_int("length", length, 1)

    @abc.abstractmethod
    def shapes(self) -> dict:
        """Name → shape of one member's weights."""

    @abc.abstractmethod
    def init_member(self, generator: torch.Generator) -> dict:
        """One member's initial weights (float64, CPU), drawn from ``generator`` in a fixed order."""

    @abc.abstractmethod
    def logits(self, params: dict, tokens: torch.Tensor, buffers: dict) -> torch.Tensor:
        """tokens (R, batch, L) int64 → logits (R, batch, L, num_classes)."""

    def parameters(self, length: int | None = None) -> int:
        """Number of trainable parameters of one member that sees sequences of ``length`` (default the model's)."""
        return sum(_numel(s) for s in self.shapes().values())

    def buffers(self, lengths, device=None, dtype=torch.float32) -> dict:
        """Per-member constants of the forward pass for members of sequence lengths ``lengths`` (R,)."""
        return {}

    def init(self, seeds, *, device=None, dtype=torch.float32) -> dict:
        """Stacked initial weights of members seeded with ``seeds``: name → (R, *shape) on ``device``."""
        members = []
        for s in seeds:
            g = torch.Generator()
            g.manual_seed(check_int("seed", s, 0))
            members.append(self.init_member(g))
        return stack(members, device=device, dtype=dtype)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def stack(members: list, *, device=None, dtype=None) -> dict:
    """name → (R, …) from a list of R member dictionaries of one layout."""
    return {k: torch.stack([m[k] for m in members]).to(device=device, dtype=dtype) for k in members[0]}


def member(params: dict, i: int) -> dict:
    """Member ``i``'s weights (views) from stacked ``params``."""
    return {k: v[i] for k, v in params.items()}


def uniform(generator, shape, bound: float) -> torch.Tensor:
    """U(−bound, bound) in float64 (PyTorch's default Linear initialisation with bound = 1/√fan_in)."""
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


def normal(generator, shape, std: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=torch.float64) * std


def embed(tokens: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """tokens (R, B, L) int64, table (R, V, e) → (R, B, L, e) by a batched one-hot matmul."""
    R, B, L = tokens.shape
    vocab = torch.arange(table.shape[1], device=tokens.device)
    onehot = (tokens.reshape(R, B * L, 1) == vocab).to(table.dtype)          # no bounds check: no host sync
    return torch.bmm(onehot, table).reshape(R, B, L, table.shape[2])


#: rows of x per slice of the weight gradient's sum (0: one slice). The gradient of W in x Wᵀ sums over every row
#: of x (batch·L of them per member); as one batched matmul with an item per member, a few thread blocks on a GPU
#: run those long sums. Cut into S slices, the matmul has S items per member and the S partial gradients are summed
#: after (benchmarks/train_step.py measures both).
ROWS_PER_SLICE = 256


def _slices(rows: int) -> int:
    """The number of equal slices of ``rows`` rows: about rows / ROWS_PER_SLICE, a divisor of rows (1: none)."""
    if not ROWS_PER_SLICE:
        return 1
    s = max(1, rows // ROWS_PER_SLICE)
    while rows % s:
        s -= 1
    return s


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Per-member x Wᵀ + b: x (R, …, in), weight (R, out, in), bias (R, out) → (R, …, out).

    The rows are cut into S slices, x → (R, S, rows/S, in), against W broadcast over S; the backward pass of the
    broadcast sums the S slices' weight gradients (the same gradient, summed in another order)."""
    R, shape, n = x.shape[0], x.shape[1:-1], x.shape[-1]
    rows = math.prod(shape)
    s = _slices(rows)
    y = torch.matmul(x.reshape(R, s, rows // s, n), weight.transpose(1, 2)[:, None])
    if bias is not None:
        y = y + bias[:, None, None, :]
    return y.reshape(R, *shape, weight.shape[1])


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-member LayerNorm over the last axis (biased variance, ε = 1e-5): x (R, …, d), weight, bias (R, d)."""
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).square().mean(-1, keepdim=True)
    view = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
    return (x - mean) * torch.rsqrt(var + LN_EPS) * weight.reshape(view) + bias.reshape(view)


def with_position(x: torch.Tensor, pe_scale: torch.Tensor) -> torch.Tensor:
    """Append the position t = 1..L times the member's scale as the last element: (R, B, L, e) → (R, B, L, e+1)."""
    R, B, L, _ = x.shape
    t = torch.arange(1, L + 1, device=x.device, dtype=x.dtype)
    pos = (pe_scale.to(x.dtype)[:, None] * t).reshape(R, 1, L, 1).expand(R, B, L, 1)
    return torch.cat([x, pos], dim=-1)


def pe_scales(config: SSMConfig, lengths, device=None, dtype=torch.float32) -> torch.Tensor:
    """(R,) scale of the position element: 1/T_r (``"t/T"``) or 1 (``"t"``)."""
    lengths = torch.as_tensor(list(lengths), dtype=torch.float64)
    scale = 1.0 / lengths if config.pe_scale == "t/T" else torch.ones_like(lengths)
    return scale.to(device=device, dtype=dtype)
