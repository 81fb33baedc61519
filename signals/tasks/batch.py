"""The container every task generator returns."""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..checks import check_int

IGNORE = -1


class TaskBatch(NamedTuple):
    """Sequences of a task: ``inputs`` (S, T) int64, ``targets`` (S, T) int64 (IGNORE off the mask), ``mask``
    (S, T) bool."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


def generator(seed) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (an integer ≥ 0)."""
    g = torch.Generator()
    g.manual_seed(check_int("seed", seed, 0))
    return g
