"""KEEP n-TH (Sec. 4.1, App. D.2): x_i ~ Unif{0..|V|−1} i.i.d.; y_t = x_n, scored at t = n..T.

Inputs and targets lie in [0, |V|).
"""
from __future__ import annotations

import torch

from ..checks import check_int
from .batch import IGNORE, TaskBatch, generator


def keep_nth(samples: int, length: int = 50, n: int = 5, vocab: int = 128, *, seed: int = 0) -> TaskBatch:
    """KEEP n-TH (App. D.2): x_i ~ Unif{0..vocab−1}; y_t = x_n scored at t = n..T (1-based).

    Defaults are Tab. 1's KEEP FIFTH: T = 50, n = 5, |V| = 128.
    """
    samples, length = check_int("samples", samples, 1), check_int("length", length, 1)
    vocab = check_int("vocab", vocab, 2)
    n = check_int("n", n, 1)
    if n > length:
        raise ValueError(f"n must be at most the sequence length T={length}, got n={n}")
    g = generator(seed)
    inputs = torch.randint(0, vocab, (samples, length), generator=g)
    mask = torch.zeros(samples, length, dtype=torch.bool)
    mask[:, n - 1:] = True
    targets = torch.where(mask, inputs[:, n - 1:n].expand(samples, length), torch.full_like(inputs, IGNORE))
    return TaskBatch(inputs, targets, mask)
