"""Seeded test signals on the grid of docs/design.md §1 (values at the midpoints s_i = (i − ½)/L).

- :func:`piecewise` — m jumps: m breakpoints uniform in (0, 1), m + 1 levels N(0, 1) (the ρ of Cor. 1);
  batched: trial t of a call draws from ``np.random.default_rng((seed, t))``, so a trial does not depend on how
  many trials are drawn with it and the single signal is trial 0.
- :func:`needle` — a narrow rectangular spike (a needle in a haystack, Sec. 4.1).
- :func:`haar` — one Haar wavelet ψ_{j,k} (eqs. 10, 17).
- :func:`step` — H(s − at).
- :func:`generate` — any of them (or a user's file, :mod:`signals.files`) by name, with a description of what
  was drawn.
"""
from __future__ import annotations

import numpy as np
import torch

from .checks import check_float, check_int
from .files import load_signal
from .grid import check_length, midpoints

SIGNALS = ("piecewise", "needle", "haar", "step", "file")


def _check_unit(name: str, value) -> float:
    return check_float(name, value, 0.0, 1.0)


def piecewise_params(m: int, seed: int = 0, batch: int | None = None):
    """Breakpoints (…, m), sorted, uniform in (0, 1), and levels (…, m + 1), N(0, 1), of :func:`piecewise`.

    Returns numpy arrays with a leading axis of size ``batch`` when it is given.
    """
    m = check_int("m", m, 0)
    seed = check_int("seed", seed, 0)
    trials = 1 if batch is None else check_int("batch", batch, 1)
    breaks = np.empty((trials, m))
    levels = np.empty((trials, m + 1))
    for t in range(trials):
        rng = np.random.default_rng((seed, t))
        breaks[t] = np.sort(rng.uniform(0.0, 1.0, m))
        levels[t] = rng.standard_normal(m + 1)
    if batch is None:
        return breaks[0], levels[0]
    return breaks, levels


def piecewise(m: int, L: int = 4096, seed: int = 0, *, batch: int | None = None, dtype=torch.float64,
              device=None) -> torch.Tensor:
    """A piecewise-constant signal with m jumps (docs/design.md §1), sampled on the grid.

    ρ(s) = levels[q] for breaks[q−1] ≤ s < breaks[q] (breaks and levels from :func:`piecewise_params`).
    Returns (L,), or (batch, L) with a new random signal per trial.
    """
    check_length(L)
    breaks, levels = piecewise_params(m, seed, batch)
    s = midpoints(L).numpy()
    if batch is None:
        values = levels[np.searchsorted(breaks, s, side="right")]
    else:
        values = np.stack([lv[np.searchsorted(br, s, side="right")] for br, lv in zip(breaks, levels)])
    return torch.as_tensor(values, dtype=dtype, device=device)


def needle(L: int = 4096, *, center: float = 0.3, width: float = 0.01, height: float = 1.0, dtype=torch.float64,
           device=None) -> torch.Tensor:
    """A spike: ``height`` on [center − width/2, center + width/2), 0 elsewhere. Shape (L,).

    Raises ValueError if the spike covers no grid point (width too small for L)."""
    center = _check_unit("center", center)
    width = check_float("width", width, 0.0, 1.0, low_open=True)
    s = midpoints(L, dtype=dtype, device=device)
    x = torch.where((s >= center - width / 2) & (s < center + width / 2), float(height), 0.0).to(dtype)
    if not bool(x.any()) and height != 0:
        raise ValueError(f"a needle of width {width} at {center} covers no grid point with L = {L}")
    return x


def haar(j: int, k: int, L: int = 4096, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """One Haar wavelet ψ_{j,k}(s) = 2^{j/2} ψ(2^j s − k) (eqs. 10, 17) on the grid; needs 2^{j+1} ≤ L. Shape (L,)."""
    j = check_int("j", j, 0)
    k = check_int("k", k, 0)
    check_length(L)
    if k >= 2 ** j:
        raise ValueError(f"k must be < 2^j = {2 ** j} (the shifts of scale j), got {k}")
    if 2 ** (j + 1) > L:
        raise ValueError(f"the Haar wavelet at scale j = {j} needs at least 2^(j+1) = {2 ** (j + 1)} samples, got {L}")
    u = midpoints(L, dtype=dtype, device=device) * 2 ** j - k
    pos = ((u >= 0) & (u < 0.5)).to(dtype)
    neg = ((u >= 0.5) & (u < 1)).to(dtype)
    return 2 ** (j / 2) * (pos - neg)


def step(L: int = 4096, *, at: float = 0.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """The step H(s − at) = 1[s > at] on the grid. Shape (L,)."""
    at = _check_unit("at", at)
    return (midpoints(L, dtype=dtype, device=device) > at).to(dtype)


def generate(name: str, *, samples: int | None = None, m: int = 3, seed: int = 0, path=None,
             resample: bool = False, j: int = 2, k: int = 1, at: float = 0.5, width: float = 0.01,
             dtype=torch.float64, device=None):
    """Build a signal by name (one of :data:`SIGNALS`).

    ``samples`` is L (default 4096). For ``"file"`` the file's length defines L; with ``resample=True`` the file
    is resampled to ``samples`` points (zero-order hold, :func:`signals.files.load_signal`).
    ``at`` is the step location and the needle's centre; ``j``, ``k`` pick the Haar wavelet.

    Returns ``(x, info)``: x (L,) and a dict describing what was built (e.g. the breakpoints and levels drawn).
    """
    if name not in SIGNALS:
        raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, got {name!r}")
    if name == "file":
        if path is None:
            raise ValueError("path must be given for the 'file' signal (a .npy or .csv file)")
        x = load_signal(path, samples if resample else None, dtype=dtype, device=device)
        return x, {"path": str(path), "file_samples": None if resample else x.shape[0],
                   "resampled": bool(resample)}
    L = 4096 if samples is None else check_length(samples)
    if name == "piecewise":
        breaks, levels = piecewise_params(m, seed)
        x = piecewise(m, L, seed, dtype=dtype, device=device)
        return x, {"m": m, "breakpoints": breaks.tolist(), "levels": levels.tolist()}
    if name == "needle":
        return needle(L, center=at, width=width, dtype=dtype, device=device), {"center": at, "width": width}
    if name == "haar":
        return haar(j, k, L, dtype=dtype, device=device), {"j": j, "k": k}
    return step(L, at=at, dtype=dtype, device=device), {"at": at}
