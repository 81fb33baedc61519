"""INDUCTION HEADS (Sec. 5.2, App. C.2 and D.4).

x_i ∈ [0, |V|); y_t = x_{j(t)+1} with j(t) = max{j < t : x_j = x_t}, or the blank × = |V| when x_t has not
occurred before: ``num_classes = |V| + 1``. The positions scored (``positions``, the paper does not say): every
position (``"all"``, the default: the blank is a class like any other), the positions with a previous occurrence
(``"repeat"``), or the hard setting's position T − r alone (``"hard"``: standard sequences score nothing). With probability ``hard_prob`` a sequence is drawn in the hard setting:
a special token v* is excluded from the i.i.d. draw and placed at positions r and T − r, r ~ Unif{1..⌊γT⌋}.
The paper's experiments take T > 2|V| + 1, p = 0.75, γ = 0.1; the generator does not require T > 2|V| + 1.
"""
from __future__ import annotations

import torch

from ..checks import check_choice, check_int
from .batch import IGNORE, TaskBatch, generator

POSITIONS = ("all", "repeat", "hard")


def induction_targets(inputs: torch.Tensor, vocab: int) -> torch.Tensor:
    """INDUCTION HEADS targets: y_t = x_{j(t)+1}, j(t) = max{j < t : x_j = x_t}, or the blank ``vocab``.

    inputs: (S, T) integer tensor with values in [0, vocab) → (S, T) int64.
    """
    samples, length = inputs.shape
    rows = torch.arange(samples)
    last = torch.full((samples, vocab), -1, dtype=torch.int64)      # latest position of each token so far
    targets = torch.full((samples, length), vocab, dtype=torch.int64)
    for t in range(length):
        tok = inputs[:, t].long()
        prev = last[rows, tok]
        seen = prev >= 0
        targets[seen, t] = inputs[rows[seen], prev[seen] + 1].long()
        last[rows, tok] = t
    return targets


def induction_heads(samples: int, length: int = 100, vocab: int = 20, *, hard_prob: float = 0.0,
                    gamma: float = 0.1, positions: str = "all", seed: int = 0) -> TaskBatch:
    """INDUCTION HEADS (App. D.4), standard setting and, with probability ``hard_prob``, the hard setting.

    Defaults: T = 100 as in Fig. 3 (whose |V| ∈ {5, 10, 20, 40}, p = 0.75, γ = 0.1).
    """
    samples, length = check_int("samples", samples, 1), check_int("length", length, 2)
    vocab = check_int("vocab", vocab, 2)
    check_choice("positions", positions, POSITIONS)
    if positions == "hard" and not hard_prob > 0:
        raise ValueError("positions 'hard' scores the hard setting's position T − r: it needs hard_prob > 0")
    if not 0.0 <= float(hard_prob) <= 1.0:
        raise ValueError(f"hard_prob must lie in [0, 1], got {hard_prob!r}")
    if not 0.0 < float(gamma) <= 0.5:
        raise ValueError(f"gamma must lie in (0, 0.5], got {gamma!r}")
    r_max = int(gamma * length)
    if hard_prob > 0 and (r_max < 1 or length - r_max <= r_max):
        raise ValueError(f"the hard setting needs 1 ≤ ⌊γT⌋ < T/2, got γ={gamma}, T={length}")
    g = generator(seed)
    inputs = torch.randint(0, vocab, (samples, length), generator=g)
    hard = torch.rand(samples, generator=g) < hard_prob
    special = torch.randint(0, vocab, (samples,), generator=g)
    others = torch.randint(0, vocab - 1, (samples, length), generator=g)            # uniform on V \ {v*}
    others = others + (others >= special[:, None]).long()
    r = torch.randint(1, max(r_max, 1) + 1, (samples,), generator=g)                # 1-based r ∈ {1..⌊γT⌋}
    rows = torch.arange(samples)
    others[rows, r - 1] = special
    others[rows, length - r - 1] = special
    inputs = torch.where(hard[:, None], others, inputs)
    targets = induction_targets(inputs, vocab)
    if positions == "all":
        mask = torch.ones(samples, length, dtype=torch.bool)
    elif positions == "repeat":
        mask = targets != vocab
    else:
        mask = torch.zeros(samples, length, dtype=torch.bool)
        mask[rows[hard], length - r[hard] - 1] = True
    return TaskBatch(inputs, torch.where(mask, targets, torch.full_like(targets, IGNORE)), mask)
