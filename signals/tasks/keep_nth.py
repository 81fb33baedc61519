"""KEEP n-TH (Sec. 4.1, App. D.2): x_i ~ Unif{0..|V|−1} i.i.d.; y_t = x_n.

Inputs and targets lie in [0, |V|). The scored positions are an option, because App. D.2 states the target for
n < t ≤ T but takes loss and accuracy "at time t = n, …, T":

- ``"from-n"`` (default, as App. D.2 computes loss and accuracy): t = n..T, T − n + 1 positions;
- ``"after-n"`` (as the target is stated): t = n+1..T, T − n positions (needs n < T).

The tokens come from the counter-based generator of :mod:`signals.tasks.counter` (stream ``seed``), drawn in one
call on ``device``: the same seed gives the same sequences on the CPU and on a GPU.
"""
from __future__ import annotations

import torch

from ..checks import check_choice, check_int
from .batch import IGNORE, TaskBatch
from .counter import integers, stream

POSITIONS = ("from-n", "after-n")


def keep_nth(samples: int, length: int = 50, n: int = 5, vocab: int = 128, *, seed: int = 0,
             positions: str = "from-n", device=None) -> TaskBatch:
    """KEEP n-TH (App. D.2): x_i ~ Unif{0..vocab−1}; y_t = x_n scored at t = n..T (or t = n+1..T), 1-based.

    Defaults are Tab. 1's KEEP FIFTH: T = 50, n = 5, |V| = 128. Returns (samples, length) tensors on ``device``
    (default the CPU).
    """
    samples, length = check_int("samples", samples, 1), check_int("length", length, 1)
    vocab = check_int("vocab", vocab, 2)
    n = check_int("n", n, 1)
    seed = check_int("seed", seed, 0)
    check_choice("positions", positions, POSITIONS)
    if n > length:
        raise ValueError(f"n must be at most the sequence length T={length}, got n={n}")
    if positions == "after-n" and n == length:
        raise ValueError(f"positions='after-n' scores t = n+1..T, which is empty for n = T = {length}")
    inputs = integers(stream(seed), (samples, length), vocab, device=device)
    first = n - 1 if positions == "from-n" else n                                  # 0-based first scored t
    mask = (torch.arange(length, device=inputs.device) >= first).expand(samples, length)
    targets = torch.where(mask, inputs[:, n - 1:n].expand(samples, length), torch.full_like(inputs, IGNORE))
    return TaskBatch(inputs, targets, mask.contiguous())
