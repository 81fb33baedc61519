"""A user's own task sequences: a ``.npz`` file with arrays ``inputs``, ``targets``, ``mask`` of one shape."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .batch import IGNORE, TaskBatch


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
