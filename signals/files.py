"""A user's own signal from a ``.npy`` or ``.csv`` file (docs/design.md §1).

The file holds one column of L numbers: sample i is the signal's value on the cell [(i−1)/L, i/L), i.e. at the
midpoint s_i. By default the file's length defines L. With ``samples`` given, the signal is resampled to that
many points by zero-order hold (each new midpoint takes the value of the file's cell that contains it), which keeps
a piecewise-constant signal piecewise constant.

``.csv``: one number per line; blank lines and ``#`` comments are skipped; the first line may be a header.
``.npy``: a 1-D array, or 2-D with one column, of real numbers.
Every defect — missing, unreadable, empty, non-numeric, NaN or infinite values, more than one column — raises a
one-line ValueError naming the file and the offending value.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .grid import check_length, midpoints

SUFFIXES = (".npy", ".csv")


def _read_csv(path: Path) -> np.ndarray:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the signal file {path}: {e}") from None
    values, header_allowed = [], True
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != 1:
            raise ValueError(f"the signal file {path} must have one column, line {number} has {len(fields)}: {text!r}")
        try:
            values.append(float(fields[0]))
        except ValueError:
            if header_allowed:                              # a header on the first non-blank line
                header_allowed = False
                continue
            raise ValueError(f"the signal file {path} has a non-numeric value on line {number}: {fields[0]!r}") \
                from None
        header_allowed = False
    return np.asarray(values, dtype=np.float64)


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"cannot read the signal file {path} as .npy: {e}".replace("\n", " ")) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        kind = getattr(array, "dtype", type(array))
        raise ValueError(f"the signal file {path} must hold real numbers, got dtype {kind}")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"the signal file {path} must hold one column, got an array of shape {array.shape}")
    return array.astype(np.float64)


def load_signal(path, samples: int | None = None, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Read a signal from ``path`` (.npy or .csv); resample to ``samples`` points when given. Returns (L,)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"the signal file must end in .npy or .csv, got {str(path)!r}")
    if not path.exists():
        raise ValueError(f"the signal file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"the signal file {str(path)!r} is not a regular file")
    values = _read_npy(path) if path.suffix.lower() == ".npy" else _read_csv(path)
    if values.size < 2:
        raise ValueError(f"the signal file {path} must hold at least 2 samples, got {values.size}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"the signal file {path} holds {bad.size} NaN or infinite value(s), "
                         f"the first at sample {bad[0] + 1}: {values[bad[0]]}")
    if samples is not None:
        check_length(samples)
        cell = np.floor(midpoints(samples).numpy() * values.size).astype(np.int64)
        values = values[np.minimum(cell, values.size - 1)]
    return torch.as_tensor(values, dtype=dtype, device=device)
