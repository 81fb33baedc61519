"""Fit S4D, Mamba, Haar or Fourier bases to a signal by least squares and report the L² error (Sec. 4.1).

:func:`fit` builds the signal (:mod:`signals`), chooses N basis functions with a *strategy*, realises them
(through the scan for the SSM bases, :mod:`approx.bases`), projects the signal onto their span on the grid
(:func:`approx.lstsq.least_squares`, eqs. 25-26) and returns a :class:`FitResult`.

Bases and strategies (N = ``n`` counts real basis functions):

=========  ===========  ==========================================================================================
basis      strategy     functions
=========  ===========  ==========================================================================================
s4d        fourier      exp(−λ(1 − s)) with λ = −i2πk, k = 0, 1, …: 1, cos 2πks, sin 2πks (the first N)
s4d        s4d-lin      λ_k = ½ + iπk (S4D-Lin; the signal spans one unit of time): the first N real functions
s4d        best         λ = −i2πk at the frequencies of the N largest Fourier terms of the signal (Re or Im each)
mamba      haar         Thm. 1: the N // 3 largest Haar atoms of the signal (pywt), each realised by its ≤ 3 Heaviside
                        Mamba bases with the fixed weights of eq. (18); least squares on the realised atoms
mamba      heaviside    H(s − 0) and Heavisides at the signal's N − 1 largest jumps (m + 1 represent m jumps)
haar       best         the ideal best N-term Haar dictionary (largest |coefficients|, pywt)
haar       linear       the first N Haar atoms, coarse to fine
fourier    partial      the ideal Fourier partial sum with N real functions (1, cos, sin, …)
fourier    best         the ideal best N-term Fourier dictionary
=========  ===========  ==========================================================================================
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import torch

import signals
from . import bases
from .lstsq import errors, least_squares
from .records import make_record

STRATEGIES = {
    "s4d": ("fourier", "s4d-lin", "best"),
    "mamba": ("haar", "heaviside"),
    "haar": ("best", "linear"),
    "fourier": ("partial", "best"),
}
BASES = tuple(STRATEGIES)
DEFAULT_STRATEGY = {"s4d": "fourier", "mamba": "haar", "haar": "best", "fourier": "partial"}
DEFAULT_N = 32
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class FitResult:
    """Everything one fit produced.

    x, fit : (L,) the signal and its least-squares fit.
    basis : (L, N_ls) the functions the least squares used (for ``mamba/haar`` the realised atoms).
    ssm_basis : (L, N_used) the SSM basis functions built (the Heaviside Mamba bases for ``mamba/haar``; the same
        as ``basis`` otherwise).
    coef : (N_ls,) least-squares coefficients.
    metrics : ``l2``, ``l2_sq``, ``n_requested``, ``n_used`` (distinct basis functions built), ``signal_norm_sq``,
        and ``ideal_l2_sq`` — the error of the ideal dictionary the strategy realises — where one exists.
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
        """The DESIGN §4 result record (config, metrics, seed, versions, device, wall time, parameters)."""
        return make_record(self.config, self.metrics, seed=self.config.get("seed"), device=self.device,
                           wall_s=self.wall_s, params=self.params, signal=self.signal_info)


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available else CPU; ``cuda`` without CUDA raises ValueError naming it."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available on this machine")
    return torch.device(device)


def check_choice(basis: str, strategy: str | None) -> str:
    """Validate the basis and its strategy (``None`` → the basis's default); return the strategy."""
    if basis not in STRATEGIES:
        raise ValueError(f"unknown basis {basis!r}; choose one of {', '.join(BASES)}")
    if strategy is None:
        return DEFAULT_STRATEGY[basis]
    if strategy not in STRATEGIES[basis]:
        owners = [b for b, s in STRATEGIES.items() if strategy in s]
        hint = f" (it belongs to basis {', '.join(owners)})" if owners else ""
        raise ValueError(f"strategy {strategy!r} does not belong to basis {basis!r}{hint}; "
                         f"the strategies of {basis} are {', '.join(STRATEGIES[basis])}")
    return strategy


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of basis functions) must be an integer ≥ 1, got {n!r}")
    return n


def signal_jumps(x: torch.Tensor, n_jumps: int, *, rtol: float = 1e-12):
    """The ``n_jumps`` largest jumps of a sampled signal, as cell edges t̂ = i/L between samples i and i + 1.

    A jump is a change |x_{i+1} − x_i| above ``rtol``·max|x|; the largest are kept (ties: the earlier first).
    Returns (edges, sizes): sorted edges (J,) and the signed jumps there, J ≤ n_jumps.
    """
    L = x.shape[-1]
    d = x[1:] - x[:-1]
    tol = rtol * float(x.abs().max().clamp_min(1e-300))
    order = torch.sort(d.abs(), descending=True, stable=True).indices
    keep = order[: max(n_jumps, 0)]
    keep = keep[d[keep].abs() > tol]
    keep = torch.sort(keep).values
    return (keep + 1).to(x.dtype) / L, d[keep]


def _fit_mamba_heaviside(x, n, *, sharpness, time, backend):
    L = x.shape[-1]
    edges, sizes = signal_jumps(x, n - 1)
    t_hat = torch.cat([edges.new_zeros(1), edges])
    G = bases.mamba_basis(t_hat, L, sharpness=sharpness, time=time, backend=backend, dtype=x.dtype,
                          device=x.device)
    labels = ["H(s − 0)"] + [f"H(s − {t:.4f})" for t in edges.tolist()]
    params = {"jumps": edges.tolist(), "jump_sizes": sizes.tolist(),
              "switch_points": bases.heaviside_switch(t_hat, L).tolist()}
    ideal = least_squares(bases.heaviside_grid(t_hat, L, dtype=x.dtype, device=x.device), x)[1]
    return G, G, labels, params, errors(x, ideal)["l2_sq"].item()


def _fit_mamba_haar(x, n, *, sharpness, time, backend):
    L = bases.check_power_of_two(x.shape[-1])
    if n < 3:
        raise ValueError(f"n = {n} is too small for --strategy haar: three Mamba bases realise one Haar wavelet "
                         "(Thm. 1), so n must be ≥ 3")
    n_atoms = min(n // 3, L)
    idx = bases.haar_best_atoms(x, n_atoms)
    j_all, k_all = bases.haar_index(L)
    coef = bases.haar_coefficients(x)
    atoms = [(int(j_all[i]), int(k_all[i])) for i in idx.tolist()]
    terms = [bases.haar_heavisides(j, k) for j, k in atoms]
    t_hat = sorted({t for atom in terms for t, _ in atom})
    column = {t: c for c, t in enumerate(t_hat)}
    W = torch.zeros(len(t_hat), len(atoms), dtype=x.dtype, device=x.device)
    for a, atom in enumerate(terms):
        for t, w in atom:
            W[column[t], a] = w
    H = bases.mamba_basis(t_hat, L, sharpness=sharpness, time=time, backend=backend, dtype=x.dtype,
                          device=x.device)
    labels = ["φ" if j < 0 else f"ψ({j},{k})" for j, k in atoms]
    switch = bases.heaviside_switch(torch.tensor(t_hat, dtype=x.dtype), L)
    params = {"atoms": [{"j": j, "k": k, "coefficient": float(coef[i])} for (j, k), i in zip(atoms, idx.tolist())],
              "heavisides": t_hat, "switch_points": switch.tolist()}
    ideal = bases.haar_best_l2_sq(x)[n_atoms].item()
    return H @ W, H, labels, params, ideal


def _fit_s4d(x, n, strategy, *, backend):
    L = x.shape[-1]
    if strategy == "fourier":
        bases.check_fourier_terms(n, L)
        lam = bases.fourier_lambdas(n)
        G = bases.s4d_basis(lam, L, backend=backend, dtype=x.dtype, device=x.device)[:, :n]
        k, kind = bases.fourier_index(n)
        ideal = bases.fourier_partial_l2_sq(x)[n].item()
    elif strategy == "s4d-lin":
        if n > L:
            raise ValueError(f"n = {n} S4D-Lin functions exceed the L = {L} grid points")
        lam = bases.s4d_lin_lambdas(n)
        G = bases.s4d_basis(lam, L, backend=backend, dtype=x.dtype, device=x.device)[:, :n]
        labels = []
        for value in lam.tolist():
            name = f"λ = {value.real:g}{value.imag:+.4g}i"
            labels += [f"Re, {name}", f"Im, {name}"] if value.imag else [f"Re, {name}"]
        params = {"lambdas": [[v.real, v.imag] for v in lam.tolist()], "time_scale": "the signal spans one unit"}
        return G, G, labels[:n], params, None
    else:
        idx = bases.fourier_best_terms(x, n)
        k_all, kind_all = bases.fourier_index(bases.max_fourier_terms(L))
        k, kind = k_all[idx.cpu()], kind_all[idx.cpu()]
        freqs = sorted(set(k.tolist()))
        lam = bases.fourier_lambdas(2 * max(freqs) + 1)[freqs]
        g = bases.s4d_basis_complex(lam, L, backend=backend, dtype=x.dtype, device=x.device)
        col = {f: c for c, f in enumerate(freqs)}
        # exp(i2πk(1 − s)) = cos 2πks − i sin 2πks: Re gives the cosine, −Im the sine
        G = torch.stack([g[:, col[f]].real if t == 0 else -g[:, col[f]].imag
                         for f, t in zip(k.tolist(), kind.tolist())], dim=-1)
        ideal = bases.fourier_best_l2_sq(x)[n].item()
    labels = ["1" if f == 0 else f"{'cos' if t == 0 else 'sin'} 2π·{f}s" for f, t in zip(k.tolist(), kind.tolist())]
    params = {"frequencies": k.tolist(), "kinds": ["cos" if t == 0 else "sin" for t in kind.tolist()],
              "lambdas": [[0.0, -2 * torch.pi * f] for f in k.tolist()]}
    return G, G, labels, params, ideal


def _fit_ideal(x, n, basis, strategy):
    L = x.shape[-1]
    if basis == "haar":
        bases.check_power_of_two(L)
        if n > L:
            raise ValueError(f"n = {n} Haar atoms exceed the L = {L} atoms of the dictionary")
        j_all, k_all = bases.haar_index(L)
        idx = bases.haar_best_atoms(x, n) if strategy == "best" else torch.arange(n)
        j, k = j_all[idx.cpu()], k_all[idx.cpu()]
        G = bases.haar_atoms(j, k, L, dtype=x.dtype, device=x.device)
        labels = ["φ" if a < 0 else f"ψ({a},{b})" for a, b in zip(j.tolist(), k.tolist())]
        return G, G, labels, {"atoms": [{"j": a, "k": b} for a, b in zip(j.tolist(), k.tolist())]}, None
    bases.check_fourier_terms(n, L)
    k_all, kind_all = bases.fourier_index(bases.max_fourier_terms(L))
    idx = bases.fourier_best_terms(x, n) if strategy == "best" else torch.arange(n)
    k, kind = k_all[idx.cpu()], kind_all[idx.cpu()]
    G = bases.fourier_functions(k, kind, L, dtype=x.dtype, device=x.device)
    labels = ["1" if f == 0 else f"{'cos' if t == 0 else 'sin'} 2π·{f}s" for f, t in zip(k.tolist(), kind.tolist())]
    params = {"frequencies": k.tolist(), "kinds": ["cos" if t == 0 else "sin" for t in kind.tolist()]}
    return G, G, labels, params, None


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
    basis, strategy : one of :data:`BASES` and one of its :data:`STRATEGIES` (``None`` → :data:`DEFAULT_STRATEGY`).
    n : the number of real basis functions asked for (default 32). ``metrics["n_used"]`` says how many distinct
        functions were built: fewer for ``mamba/heaviside`` when the signal has fewer than n − 1 jumps; for
        ``mamba/haar`` the distinct Heaviside bases behind the n // 3 atoms (≤ n).
    time : ``"pe"`` or ``"recover"``: how the Mamba bases' Δ reads time (DESIGN §3).
    sharpness : |w| of the Mamba Heavisides; ``None`` → 64 L² (:func:`approx.bases.default_sharpness`).
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``. dtype : float64 by default.

    Returns
    -------
    :class:`FitResult`.
    """
    start = _time.perf_counter()
    strategy = check_choice(basis, strategy)
    n = _check_n(n)
    if time not in bases.TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(bases.TIME_MODES)}, got {time!r}")
    if sharpness is not None:
        sharpness = bases.check_sharpness(sharpness)
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
    params = {}
    if basis == "mamba":
        sharp = bases.default_sharpness(L) if sharpness is None else sharpness
        builder = _fit_mamba_haar if strategy == "haar" else _fit_mamba_heaviside
        G, ssm, labels, params, ideal = builder(x, n, sharpness=sharp, time=time, backend=backend)
        params = {**params, "sharpness": sharp, "lam": 1.0, "time": time}
    elif basis == "s4d":
        G, ssm, labels, params, ideal = _fit_s4d(x, n, strategy, backend=backend)
    else:
        G, ssm, labels, params, ideal = _fit_ideal(x, n, basis, strategy)
    coef, xhat = least_squares(G, x)
    err = errors(x, xhat)
    metrics = {"l2": err["l2"].item(), "l2_sq": err["l2_sq"].item(), "n_requested": n,
               "n_used": int(ssm.shape[-1]), "signal_norm_sq": float((x ** 2).mean())}
    if ideal is not None:
        metrics["ideal_l2_sq"] = ideal
    config = {"signal": info["name"], "samples": L, "seed": seed, "basis": basis, "strategy": strategy, "n": n,
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
                     params=params, signal_info=info, device=str(dev), wall_s=_time.perf_counter() - start,
                     labels=labels)
