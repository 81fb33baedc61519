"""Fit S4D, Mamba, Haar or Fourier bases to a signal by least squares and report the L² error (Sec. 4.1).

:func:`fit` builds the signal (:mod:`signals`), chooses N basis functions with a *strategy* — an entry of the one
table of (basis, strategy), :mod:`approx.registry`, whose builders live in :mod:`approx.families` — realises them
(through the scan for the SSM bases), projects the signal onto their span on the grid (:func:`approx.lstsq.
least_squares`, eqs. 25-26) and returns a :class:`FitResult`. Where the strategy realises an ideal dictionary
(Haar atoms, Fourier functions, exact Heavisides), the error of that dictionary's own least-squares fit is reported
beside it (``ideal_l2_sq``, from its residual).

``approx fit --help`` and ``docs/fit.md`` list the strategies with what each one builds.
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

import signals
from kernels import free_memory, resolve_device
from signals.checks import check_int

from . import bases, registry
from .lstsq import condition_number, errors, least_squares
from .records import device_label, make_record

DEFAULT_N = 32
#: float64 work arrays a fit keeps per basis function and grid point (basis, Δ, scan state, least squares)
BYTES_PER_ENTRY = 8 * 8
#: fits with at least this many (grid point, function) pairs show their stages on a terminal
PROGRESS_FROM = 1 << 22


@dataclass
class FitResult:
    """Everything one fit produced.

    x, fit : (L,) the signal and its least-squares fit.
    basis : (L, N_ls) the functions the least squares used (for ``mamba/haar`` the realised atoms).
    ssm_basis : (L, N_used) the SSM basis functions built (the Heaviside Mamba bases for ``mamba/haar``; the same
        as ``basis`` otherwise).
    coef : (N_ls,) least-squares coefficients.
    metrics : ``l2``, ``l2_sq``, ``n_requested``, ``n_used`` (distinct basis functions built), ``signal_norm_sq``,
        ``condition_number`` (of the basis on the grid; above ~1e12 the coefficients are unstable, the fit's
        error still is not), and ``ideal_l2_sq`` — the error of the ideal dictionary the strategy realises, from
        its own residual — where one exists.
    params : the chosen basis parameters (jumps, atoms, frequencies, λ, sharpness |w|, …).
    """

    config: dict
    x: torch.Tensor
    fit: torch.Tensor
    basis: torch.Tensor
    ssm_basis: torch.Tensor
    coef: torch.Tensor
    metrics: dict
    params: dict
    signal_info: dict
    device: str
    wall_s: float
    labels: list = field(default_factory=list)

    def record(self) -> dict:
        """The result record (docs/design.md §4: config, metrics, seed, versions, device, wall time, parameters)."""
        return make_record(self.config, self.metrics, seed=self.config.get("seed"), device=self.device,
                           wall_s=self.wall_s, params=self.params, signal=self.signal_info)


def check_fit_size(L: int, n: int, device) -> None:
    """Refuse, before any work, a fit whose basis arrays would not fit in the memory free on ``device``."""
    need = BYTES_PER_ENTRY * L * n
    free = free_memory(device)
    if need > free:
        raise ValueError(f"a fit with n = {n} functions on L = {L} points needs about {need / 2**30:.1f} GiB; "
                         f"{free / 2**30:.1f} GiB are free on {device}")


def fit(signal="piecewise", *, basis: str = "mamba", strategy: str | None = None, n: int = DEFAULT_N,
        time: str = "pe", sharpness=None, m: int = 3, samples: int | None = None, seed: int = 0, path=None,
        resample: bool = False, j: int = 2, k: int = 1, at: float = 0.5, width: float = 0.01,
        device: str = "auto", backend: str = "auto", dtype=torch.float64) -> FitResult:
    """Fit N basis functions of one family to a signal by least squares on the grid and report the L² error.

    Parameters
    ----------
    signal : a signal name of :data:`signals.SIGNALS` (built with ``m``, ``samples``, ``seed``, ``path``,
        ``resample``, ``j``, ``k``, ``at``, ``width``; see :func:`signals.generate`), or the samples themselves
        (a 1-D tensor or array, L = its length).
    basis, strategy : a basis of :func:`approx.registry.bases` and one of its strategies (``None`` → the basis's
        default for fits).
    n : the number of real basis functions asked for (default 32). ``metrics["n_used"]`` says how many distinct
        functions were built: fewer for ``mamba/heaviside`` when the signal has fewer than n − 1 jumps; for
        ``mamba/haar`` the distinct Heaviside bases behind the n // 3 atoms (≤ n).
    time : ``"pe"`` or ``"recover"``: how the Mamba bases' Δ reads time (docs/design.md §3).
    sharpness : |w| of the Mamba Heavisides; ``None`` → 64 L² (:func:`approx.bases.default_sharpness`).
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``. dtype : float64 by default.

    Returns
    -------
    :class:`FitResult`.
    """
    start = _time.perf_counter()
    entry = registry.get(basis, strategy, for_fit=True)
    n = check_int("n", n, 1)
    if time not in bases.TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(bases.TIME_MODES)}, got {time!r}")
    dev = resolve_device(device)
    if isinstance(signal, str):
        x, info = signals.generate(signal, samples=samples, m=m, seed=seed, path=path, resample=resample, j=j,
                                   k=k, at=at, width=width, dtype=dtype, device=dev)
        info = {"name": signal, **info}
    else:
        x = torch.as_tensor(signal, dtype=dtype, device=dev)
        if x.dim() != 1 or x.shape[0] < 2 or not bool(torch.isfinite(x).all()):
            raise ValueError(f"a signal given as samples must be 1-D, finite, with ≥ 2 samples; got shape "
                             f"{tuple(x.shape)}")
        info = {"name": "array"}
    L = x.shape[-1]
    if entry.power_of_two:
        bases.check_power_of_two(L)
    entry.check_n(n, L)
    check_fit_size(L, n, dev)
    settings = registry.Settings(sharpness=bases.resolve_sharpness(sharpness, L), time=time, backend=backend)
    stages = tqdm(total=3, desc="approx fit", unit="stage", leave=False,
                  disable=None if L * n >= PROGRESS_FROM else True)
    stages.set_postfix_str(f"building {n} {basis}/{entry.name} functions on L = {L}")
    G, ssm, labels, params, ideal_G = entry.fit(x, n, settings)
    if basis == "mamba":
        params = {**params, "sharpness": settings.sharpness, "lam": 1.0, "time": time}
    stages.update()
    stages.set_postfix_str("least squares")
    coef, xhat = least_squares(G, x)
    err = errors(x, xhat)
    stages.update()
    metrics = {"l2": err["l2"].item(), "l2_sq": err["l2_sq"].item(), "n_requested": n,
               "n_used": int(ssm.shape[-1]), "signal_norm_sq": float((x ** 2).mean()),
               "condition_number": condition_number(G)}
    if ideal_G is not None:
        stages.set_postfix_str("the ideal dictionary's least squares")
        metrics["ideal_l2_sq"] = errors(x, least_squares(ideal_G, x)[1])["l2_sq"].item()
    stages.close()
    config = {"signal": info["name"], "samples": L, "seed": seed, "basis": basis, "strategy": entry.name, "n": n,
              "device": dev.type, "dtype": str(dtype).replace("torch.", "")}
    if info["name"] == "piecewise":
        config["m"] = m
    if info["name"] == "file":
        config.update(path=str(path), resample=bool(resample))
    if info["name"] in ("step", "needle"):
        config["at"] = at
    if info["name"] == "needle":
        config["width"] = width
    if info["name"] == "haar":
        config.update(j=j, k=k)
    if basis == "mamba":
        config.update(time=time, sharpness="auto" if sharpness is None else sharpness)
    return FitResult(config=config, x=x, fit=xhat, basis=G, ssm_basis=ssm, coef=coef, metrics=metrics,
                     params=params, signal_info=info, device=device_label(dev), wall_s=_time.perf_counter() - start,
                     labels=labels)
