"""Seeded generators of the paper's token tasks and the reader of a user's task file.

Every generator returns a :class:`TaskBatch` ``(inputs, targets, mask)`` of (samples, T) tensors:

- ``inputs``  int64, the input tokens;
- ``targets`` int64, the class to predict where ``mask`` is True, :data:`IGNORE` (−1) elsewhere;
- ``mask``    bool, the scored positions (accuracy and loss are taken there only).

Token conventions (positions are 1-based in the formulas, 0-based in the tensors):

KEEP n-TH (Sec. 4.1, App. D.2)
    x_i ~ Unif{0..|V|−1} i.i.d.; y_t = x_n, scored at t = n..T. Inputs and targets in [0, |V|).
MQAR (eq. 46-47, App. C.1 and D.3)
    Token ids: key i ↦ i (0 ≤ i < κ), value j ↦ κ + j (0 ≤ j < |V|): ``vocab_size = κ + |V|``.
    x = [k_1 v_1 … k_κ v_κ | query section]: the κ pairs hold every key once in a random order, each with a value
    drawn uniformly; the query section (positions 2κ+1..T) holds every key once as a query, in a random order at
    random positions, interleaved with noise values drawn uniformly. Targets at the query positions are the index
    j ∈ [0, |V|) of the value paired with the queried key (the paper's output layer W_o ∈ R^{|V|×d} has one row per
    value); ``num_classes = |V|``. Needs T ≥ 3κ.
INDUCTION HEADS (Sec. 5.2, App. C.2 and D.4)
    x_i ∈ [0, |V|); y_t = x_{j(t)+1} with j(t) = max{j < t : x_j = x_t}, or the blank × = |V| when x_t has not
    occurred before: ``num_classes = |V| + 1``. Every position is scored (``score_blank=False`` scores only the
    positions with a previous occurrence). With probability ``hard_prob`` a sequence is drawn in the hard setting:
    a special token v* is excluded from the i.i.d. draw and placed at positions r and T − r, r ~ Unif{1..⌊γT⌋}.
    The paper's experiments take T > 2|V| + 1, p = 0.75, γ = 0.1; the generator does not require T > 2|V| + 1.

:func:`load_task_file` reads the same three arrays from a user's ``.npz`` file and validates them.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

IGNORE = -1
TASKS = ("keep-nth", "mqar", "induction")


class TaskBatch(NamedTuple):
    """Sequences of a task: ``inputs`` (S, T) int64, ``targets`` (S, T) int64 (IGNORE off the mask), ``mask``
    (S, T) bool."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


def _int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def _generator(seed) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(_int("seed", seed, 0))
    return g


def keep_nth(samples: int, length: int = 50, n: int = 5, vocab: int = 128, *, seed: int = 0) -> TaskBatch:
    """KEEP n-TH (App. D.2): x_i ~ Unif{0..vocab−1}; y_t = x_n scored at t = n..T (1-based).

    Defaults are Tab. 1's KEEP FIFTH: T = 50, n = 5, |V| = 128.
    """
    samples, length, vocab = _int("samples", samples, 1), _int("length", length, 1), _int("vocab", vocab, 2)
    n = _int("n", n, 1)
    if n > length:
        raise ValueError(f"n must be at most the sequence length T={length}, got n={n}")
    g = _generator(seed)
    inputs = torch.randint(0, vocab, (samples, length), generator=g)
    mask = torch.zeros(samples, length, dtype=torch.bool)
    mask[:, n - 1:] = True
    targets = torch.where(mask, inputs[:, n - 1:n].expand(samples, length), torch.full_like(inputs, IGNORE))
    return TaskBatch(inputs, targets, mask)


def mqar(samples: int, length: int = 100, kappa: int = 8, vocab: int = 128, *, seed: int = 0) -> TaskBatch:
    """MQAR in the format of eq. (46)-(47) (App. C.1, D.3); see the module docstring for the token ids.

    Defaults: T = 100 and |V| = 128 as in Fig. 2, κ = 8.
    """
    samples, length = _int("samples", samples, 1), _int("length", length, 1)
    kappa, vocab = _int("kappa", kappa, 1), _int("vocab", vocab, 2)
    if length < 3 * kappa:
        raise ValueError(f"MQAR needs length ≥ 3·kappa = {3 * kappa} (κ pairs and κ queries), got length={length}")
    g = _generator(seed)
    rows = torch.arange(samples)[:, None]
    keys = torch.argsort(torch.rand(samples, kappa, generator=g), dim=1)            # every key once
    values = torch.randint(0, vocab, (samples, kappa), generator=g)                 # value index of pair i
    value_of_key = torch.empty_like(values)
    value_of_key[rows, keys] = values
    span = length - 2 * kappa
    inputs = kappa + torch.randint(0, vocab, (samples, length), generator=g)        # noise values everywhere
    inputs[:, 0:2 * kappa:2] = keys
    inputs[:, 1:2 * kappa:2] = kappa + values
    slots = torch.argsort(torch.rand(samples, span, generator=g), dim=1)[:, :kappa]
    slots = torch.sort(slots, dim=1).values + 2 * kappa                             # query positions
    queries = torch.argsort(torch.rand(samples, kappa, generator=g), dim=1)         # every key once
    inputs[rows, slots] = queries
    mask = torch.zeros(samples, length, dtype=torch.bool)
    mask[rows, slots] = True
    targets = torch.full((samples, length), IGNORE, dtype=torch.int64)
    targets[rows, slots] = value_of_key.gather(1, queries)
    return TaskBatch(inputs, targets, mask)


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
                    gamma: float = 0.1, score_blank: bool = True, seed: int = 0) -> TaskBatch:
    """INDUCTION HEADS (App. D.4), standard setting and, with probability ``hard_prob``, the hard setting.

    Defaults: T = 100 as in Fig. 3 (whose |V| ∈ {5, 10, 20, 40}, p = 0.75, γ = 0.1).
    """
    samples, length, vocab = _int("samples", samples, 1), _int("length", length, 2), _int("vocab", vocab, 2)
    if not 0.0 <= float(hard_prob) <= 1.0:
        raise ValueError(f"hard_prob must lie in [0, 1], got {hard_prob!r}")
    if not 0.0 < float(gamma) <= 0.5:
        raise ValueError(f"gamma must lie in (0, 0.5], got {gamma!r}")
    r_max = int(gamma * length)
    if hard_prob > 0 and (r_max < 1 or length - r_max <= r_max):
        raise ValueError(f"the hard setting needs 1 ≤ ⌊γT⌋ < T/2, got γ={gamma}, T={length}")
    g = _generator(seed)
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
    mask = torch.ones(samples, length, dtype=torch.bool) if score_blank else targets != vocab
    return TaskBatch(inputs, torch.where(mask, targets, torch.full_like(targets, IGNORE)), mask)


def _as_int_array(path: str, name: str, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        if np.isnan(a).any():
            raise ValueError(f"{path}: array {name!r} contains NaN")
        if not np.isfinite(a).all():
            raise ValueError(f"{path}: array {name!r} contains infinite values")
        if (a != np.round(a)).any():
            raise ValueError(f"{path}: array {name!r} must hold integer tokens, found non-integer values")
        return a.astype(np.int64)
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    raise ValueError(f"{path}: array {name!r} must have an integer dtype, got {a.dtype}")


def load_task_file(path, *, vocab_size: int, num_classes: int) -> TaskBatch:
    """Read a user's task file: a ``.npz`` with arrays ``inputs``, ``targets``, ``mask`` of one shape (S, T).

    ``inputs`` must be integers in [0, vocab_size); ``mask`` boolean (or 0/1) with at least one scored position;
    ``targets`` integers, in [0, num_classes) wherever ``mask`` is set (other positions are ignored). Integer-valued
    float arrays are accepted. Raises ValueError naming the file and the problem (missing file or key, wrong
    shape, NaN, non-integer or out-of-range token).
    """
    path = str(path)
    if not Path(path).is_file():
        raise ValueError(f"task file {path!r} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise ValueError(f"{path}: cannot read as .npz ({type(e).__name__}: {e})") from None
    if not hasattr(archive, "files"):
        raise ValueError(f"{path}: not a .npz archive (holds a single array)")
    with archive:
        missing = [k for k in ("inputs", "targets", "mask") if k not in archive.files]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(repr(k) for k in missing)} "
                             f"(found {sorted(archive.files)})")
        try:
            arrays = {k: np.asarray(archive[k]) for k in ("inputs", "targets", "mask")}
        except Exception as e:  # noqa: BLE001 - e.g. object arrays, truncated members
            raise ValueError(f"{path}: cannot read its arrays ({type(e).__name__}: {e})") from None
    shape = arrays["inputs"].shape
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{path}: array 'inputs' must have shape (samples, T) with both ≥ 1, got {shape}")
    for k in ("targets", "mask"):
        if arrays[k].shape != shape:
            raise ValueError(f"{path}: array {k!r} must have the shape of 'inputs' {shape}, got {arrays[k].shape}")
    inputs = _as_int_array(path, "inputs", arrays["inputs"])
    targets = _as_int_array(path, "targets", arrays["targets"])
    m = arrays["mask"]
    if m.dtype != bool:
        m = _as_int_array(path, "mask", m)
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"{path}: array 'mask' must be boolean or 0/1")
        m = m.astype(bool)
    if inputs.min() < 0 or inputs.max() >= vocab_size:
        raise ValueError(f"{path}: 'inputs' tokens must lie in [0, {vocab_size}), got values in "
                         f"[{inputs.min()}, {inputs.max()}]")
    if not m.any():
        raise ValueError(f"{path}: 'mask' scores no position")
    scored = targets[m]
    if scored.min() < 0 or scored.max() >= num_classes:
        raise ValueError(f"{path}: 'targets' at scored positions must lie in [0, {num_classes}), got values in "
                         f"[{scored.min()}, {scored.max()}]")
    targets = np.where(m, targets, IGNORE)
    return TaskBatch(torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(m))


def save_task_file(path, batch: TaskBatch) -> Path:
    """Write ``batch`` as a ``.npz`` file that :func:`load_task_file` reads back."""
    path = Path(path)
    np.savez(path, inputs=batch.inputs.numpy(), targets=batch.targets.numpy(), mask=batch.mask.numpy())
    return path
