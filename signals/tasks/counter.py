"""Counter-based random numbers: the same integers on every torch device, drawn in one vectorised call.

The generator is SplitMix64 (Steele, Lea & Flood 2014): element i of the stream of a 64-bit state s is

    z = s + (i + 1)·γ  (mod 2⁶⁴),   γ = 0x9E3779B97F4A7C15,
    z = (z ⊕ (z ≫ 30))·0xBF58476D1CE4E5B9,   z = (z ⊕ (z ≫ 27))·0x94D049BB133111EB,   out = z ⊕ (z ≫ 31),

computed with int64 tensor arithmetic (two's-complement wrap-around, logical shifts by masking). Because element i
depends only on (s, i), a tensor of any shape is drawn in one call on the CPU or a GPU with identical values, so
the training data, the batch order and the records they key do not depend on where they ran. :func:`splitmix64`
is the scalar Python form, the reference the tensor form is tested against.

:func:`stream` folds a tuple of non-negative integers (a data seed, a member seed and an epoch, …) into one state.
"""
from __future__ import annotations

import torch

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
M1, M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _signed(x: int) -> int:
    """The int64 value with the bits of the unsigned 64-bit ``x``."""
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * M1) & MASK64
    z = ((z ^ (z >> 27)) * M2) & MASK64
    return z ^ (z >> 31)


def splitmix64(state: int, index: int) -> int:
    """Element ``index`` (≥ 0) of the SplitMix64 stream of ``state``, as an unsigned 64-bit Python int."""
    return _mix((state + (index + 1) * GAMMA) & MASK64)


def stream(*ids: int) -> int:
    """A 64-bit state for the tuple ``ids`` of non-negative integers (order matters)."""
    state = 0x6A09E667F3BCC909
    for v in ids:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"stream ids must be non-negative integers, got {v!r}")
        state = splitmix64(state ^ (v & MASK64), v >> 64)
    return state


def _lsr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 ``z`` by ``k`` bits."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def bits(state, shape, device=None) -> torch.Tensor:
    """int64 tensor of ``shape``: the 64-bit outputs of the stream ``state`` in row-major order (as signed int64).

    ``state`` is one state, or a sequence of states, one per index of the leading axis (each row its own stream,
    numbered from 0 within the row).
    """
    shape = tuple(int(s) for s in shape)
    per_row = isinstance(state, (list, tuple))
    if per_row and len(state) != shape[0]:
        raise ValueError(f"got {len(state)} states for a leading axis of {shape[0]}")
    n = 1
    for s in shape[1:] if per_row else shape:
        n *= s
    i = torch.arange(1, n + 1, dtype=torch.int64, device=device)
    if per_row:
        base = torch.tensor([_signed(s) for s in state], dtype=torch.int64, device=device)[:, None]
    else:
        base = _signed(state)
    z = base + i * _signed(GAMMA)
    z = (z ^ _lsr(z, 30)) * _signed(M1)
    z = (z ^ _lsr(z, 27)) * _signed(M2)
    z = z ^ _lsr(z, 31)
    return z.reshape(shape)


def integers(state, shape, high: int, device=None) -> torch.Tensor:
    """int64 tensor of ``shape`` with i.i.d. uniform values in [0, high): the top 53 bits of each output mod high
    (the bias, at most high / 2⁵³, is far below any sampling error)."""
    return _lsr(bits(state, shape, device), 11) % int(high)


def permutations(states, n: int, device=None) -> torch.Tensor:
    """(len(states), n) int64: a uniformly random permutation of 0..n−1 per state (a stable sort of random 53-bit
    keys)."""
    keys = _lsr(bits(list(states), (len(states), n), device), 11)
    return torch.argsort(keys, dim=1, stable=True)
