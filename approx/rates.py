"""The rate sweep of Cor. 1: ``l2_sq`` against N for S4D, Mamba, Haar and Fourier bases on random piecewise-constant
signals with m jumps.

For each m and each (basis, strategy) — a *unit* — T seeded random signals (trial t draws from
``np.random.default_rng((seed, t))``, :func:`signals.piecewise`) are approximated with N = 1..n_max basis functions.
All trials and all N of a unit are one batched computation: every trial's basis functions are realised at once
(through the scan for the SSM bases, :mod:`approx.bases`), ordered by selection, and
:func:`approx.lstsq.nested_l2_sq` gives ``l2_sq`` for every N in one pass (orthonormal dictionaries use their
coefficients directly). Trials are chunked only to bound memory.

=========  ==========  ===========================================================================================
basis      strategy    the first N functions of trial t
=========  ==========  ===========================================================================================
s4d        fourier     λ = −i2πk (the Fourier limit of eq. 9): 1, cos 2πks, sin 2πks, … through the scan
s4d        s4d-lin     λ_k = ½ + iπk (S4D-Lin), the first N real functions
s4d        best        λ = −i2πk at the trial's N largest Fourier terms
s4d        learned     ⌈N/2⌉ complex λ trained by Adam through the scan (:mod:`approx.learned`)
mamba      haar        Thm. 1: the N // 3 largest Haar atoms, each from its 3 Heaviside Mamba bases (eq. 18)
mamba      heaviside   H(s − 0) and Heavisides at the true jumps, largest first: exact at N = m + 1 (eqs. 20-22)
mamba      learned     N Mamba bases (t̂, |w|, λ) trained by Adam through the scan
haar       best        ideal best N-term Haar (pywt), the reference of eqs. 28-31
haar       linear      the first N Haar atoms, coarse to fine
fourier    partial     ideal Fourier partial sum (eq. 27), the reference of the S4D rate
fourier    best        ideal best N-term Fourier
=========  ==========  ===========================================================================================

Each unit's floor: ``FLOOR_REL·‖x‖²`` (rounding); for Mamba also the error of the m + 1 Heaviside bases at the true
jumps at the chosen sharpness |w| (the floor set by L and |w|, eq. 22). Results go to the SQLite store
(:mod:`approx.store`), one row per unit keyed by the hash of its configuration, so a finished unit is reused and a
killed sweep redoes only the missing units.
"""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

import signals
from . import bases
from .fitting import resolve_device
from .learned import breakpoint_report, train_mamba_bases, train_s4d_bases
from .lstsq import nested_l2_sq
from .rate_fit import FLOOR_REL, first_at_floor, fit_rate, summarize, theory, verdict
from .records import make_record
from .store import Store

STRATEGIES = {
    "s4d": ("fourier", "s4d-lin", "best", "learned"),
    "mamba": ("haar", "heaviside", "learned"),
    "haar": ("best", "linear"),
    "fourier": ("partial", "best"),
}
BASES = tuple(STRATEGIES)
#: strategies run when ``strategies`` is not given (``learned`` trains, so it is asked for explicitly)
DEFAULT_STRATEGIES = {"s4d": ("fourier",), "mamba": ("haar", "heaviside"), "haar": ("best",),
                      "fourier": ("partial",)}
#: the ideal dictionaries added to every sweep unless ``reference=False``
REFERENCES = (("haar", "best"), ("fourier", "partial"))
DEFAULT_M = (1, 2, 3, 5)
LEARNED_THRESHOLD = 1e-3
#: bytes of float64 work arrays per chunk of trials (about four (chunk, L, K) arrays live at once)
CHUNK_BYTES = {"cpu": 2 ** 30, "cuda": 2 ** 32}
SCHEMA = 1


def _int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def plan_units(ms, bases_=("s4d", "mamba"), strategies=None, *, reference: bool = True) -> list:
    """The units (m, basis, strategy) of a sweep, in run order.

    ``strategies=None`` runs each basis's :data:`DEFAULT_STRATEGIES`; otherwise each listed strategy runs on every
    listed basis that has it, and a strategy that none of them has is an error. ``reference`` adds
    :data:`REFERENCES`.
    """
    ms = [_int("m (the number of jumps)", m, 0) for m in ms]
    if not ms:
        raise ValueError("give at least one value of m")
    bases_ = list(dict.fromkeys(bases_))
    for b in bases_:
        if b not in STRATEGIES:
            raise ValueError(f"unknown basis {b!r}; choose from {', '.join(BASES)}")
    if not bases_:
        raise ValueError("give at least one basis")
    pairs = []
    if strategies is None or len(strategies) == 0:
        pairs = [(b, s) for b in bases_ for s in DEFAULT_STRATEGIES[b]]
    else:
        for s in dict.fromkeys(strategies):
            owners = [b for b in bases_ if s in STRATEGIES[b]]
            if not owners:
                known = sorted({x for b in bases_ for x in STRATEGIES[b]})
                raise ValueError(f"unknown strategy {s!r} for basis {', '.join(bases_)}; choose from "
                                 f"{', '.join(known)}")
            pairs += [(b, s) for b in owners]
        pairs = [(b, s) for b in bases_ for s in STRATEGIES[b] if (b, s) in pairs]
    if reference:
        pairs += [p for p in REFERENCES if p not in pairs]
    return [(m, b, s) for m in dict.fromkeys(ms) for b, s in pairs]


def check_sweep(*, n_max, trials, samples, seed, sharpness, time, learned_n, learned_steps, learned_samples,
                learned_restarts, units):
    """Validate a sweep's numbers against its units; raise ValueError naming the bad value."""
    _int("n-max", n_max, 1)
    _int("trials", trials, 1)
    _int("seed", seed, 0)
    signals.check_length(samples)
    if time not in bases.TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(bases.TIME_MODES)}, got {time!r}")
    if sharpness is not None:
        bases.check_sharpness(sharpness)
    kinds = {(b, s) for _, b, s in units}
    if any(b in ("haar", "mamba") and s != "learned" for b, s in kinds):
        bases.check_power_of_two(samples)
        if any(b == "haar" for b, _ in kinds) and n_max > samples:
            raise ValueError(f"n-max = {n_max} exceeds the {samples} Haar atoms of a grid of {samples} samples")
    if any(b in ("s4d", "fourier") and s != "learned" for b, s in kinds):
        top = bases.max_fourier_terms(samples)
        if n_max > top:
            raise ValueError(f"n-max = {n_max} exceeds the {top} real Fourier functions below Nyquist on a grid "
                             f"of {samples} samples")
    if any(s == "learned" for _, s in kinds):
        for n in learned_n:
            _int("learned-n", n, 1)
            if n > n_max:
                raise ValueError(f"learned-n = {n} exceeds n-max = {n_max}")
        _int("learned-steps", learned_steps, 0)
        _int("learned-restarts", learned_restarts, 1)
        signals.check_length(learned_samples)


# --- one unit --------------------------------------------------------------------------------------------------

def _chunks(T, L, K, device):
    per_trial = 4 * L * max(K, 1) * 8
    size = max(1, CHUNK_BYTES.get(device.type, CHUNK_BYTES["cpu"]) // per_trial)
    return [(a, min(a + size, T)) for a in range(0, T, size)]


def haar_heaviside_slots(j: torch.Tensor, k: torch.Tensor):
    """Eq. (18) for many atoms at once: three Heaviside slots per atom.

    j, k : (…, A) atom scales and shifts (j = −1 for the scaling function, :func:`approx.bases.haar_index`).
    Returns t̂ (…, A, 3) and weights (…, A, 3) with atom = Σ_slot weight · H(s − t̂): for ψ_{j,k},
    t̂ = (2^{−j}k, 2^{−j}k + 2^{−(j+1)}, 2^{−j}(k+1)) and weights 2^{j/2}(1, −2, 1), the last dropped (weight 0)
    where t̂ = 1 (H(s − 1) vanishes on the grid); for φ, H(s − 0) alone. The same atoms as
    :func:`approx.bases.haar_heavisides`, batched.
    """
    jf, kf = j.to(torch.float64), k.to(torch.float64)
    a = kf * torch.exp2(-jf.clamp_min(0))
    h = torch.exp2(-(jf.clamp_min(0) + 1))
    t_hat = torch.stack([a, a + h, a + 2 * h], -1)
    w = torch.exp2(jf.clamp_min(0) / 2)[..., None] * torch.tensor([1.0, -2.0, 1.0], dtype=torch.float64)
    w = torch.where(t_hat >= 1.0, torch.zeros_like(w), w)
    phi = (j < 0)[..., None]
    t_hat = torch.where(phi, torch.zeros_like(t_hat), t_hat)
    w = torch.where(phi, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), w)
    return t_hat, w


def _mamba_haar(x, n_max, *, sharpness, time, backend):
    """(T, n_max) l2_sq of Thm. 1's Mamba-Haar bases: N Mamba bases realise the N // 3 best atoms."""
    T, L = x.shape
    n_atoms = n_max // 3
    out = (x ** 2).mean(-1, keepdim=True).expand(T, n_max).clone()
    if n_atoms == 0:
        return out
    idx = bases.haar_best_atoms(x, n_atoms).cpu()                       # (T, A)
    j_all, k_all = bases.haar_index(L)
    t_hat, w = haar_heaviside_slots(j_all[idx], k_all[idx])             # (T, A, 3)
    H = bases.mamba_basis(t_hat.reshape(T, -1), L, sharpness=sharpness, time=time, backend=backend,
                          dtype=x.dtype, device=x.device)               # (T, L, 3A)
    atoms = (H.reshape(T, L, n_atoms, 3) * w.to(x.device, x.dtype)[:, None]).sum(-1)
    per_atom = nested_l2_sq(atoms, x)                                   # (T, A)
    n = torch.arange(1, n_max + 1, device=x.device)
    have = (n // 3) >= 1
    out[:, have] = per_atom[:, (n[have] // 3) - 1]
    return out


def _heaviside_order(breaks: np.ndarray, levels: np.ndarray) -> torch.Tensor:
    """t̂ = (0, jumps by decreasing |size|) per trial: (T, m + 1)."""
    sizes = np.abs(np.diff(levels, axis=-1))
    order = np.argsort(-sizes, axis=-1, kind="stable")
    jumps = np.take_along_axis(breaks, order, -1)
    return torch.as_tensor(np.concatenate([np.zeros((breaks.shape[0], 1)), jumps], -1))


def _mamba_heaviside(x, breaks, levels, n_max, *, sharpness, time, backend):
    """(T, n_max) l2_sq of the Heavisides at the true jumps; N > m + 1 adds nothing (the value at m + 1)."""
    T, L = x.shape
    t_hat = _heaviside_order(breaks, levels)[:, :n_max]
    G = bases.mamba_basis(t_hat, L, sharpness=sharpness, time=time, backend=backend, dtype=x.dtype,
                          device=x.device)
    err = nested_l2_sq(G, x)
    if err.shape[-1] < n_max:
        err = torch.cat([err, err[:, -1:].expand(T, n_max - err.shape[-1])], -1)
    return err


def _s4d_shared(n_max, strategy, L, *, backend, device):
    """The (L, n_max) S4D basis shared by every trial of the ``fourier`` and ``s4d-lin`` strategies."""
    lam = bases.fourier_lambdas(n_max) if strategy == "fourier" else bases.s4d_lin_lambdas(n_max)
    return bases.s4d_basis(lam, L, backend=backend, dtype=torch.float64, device=device)[:, :n_max]


def _s4d_best(x, n_max, *, backend):
    T, L = x.shape
    idx = bases.fourier_best_terms(x, n_max).cpu()                      # (T, n_max)
    k_all, kind_all = bases.fourier_index(bases.max_fourier_terms(L))
    k, kind = k_all[idx], kind_all[idx]
    freqs = torch.unique(k)
    g = bases.s4d_basis_complex(bases.fourier_lambdas(2 * int(freqs.max()) + 1)[freqs], L, backend=backend,
                                dtype=x.dtype, device=x.device)         # (L, F)
    col = torch.searchsorted(freqs, k).to(x.device)                     # (T, n_max)
    re, im = g.real[:, col].permute(1, 0, 2), -g.imag[:, col].permute(1, 0, 2)   # (T, L, n_max)
    # exp(i2πk(1 − s)) = cos 2πks − i sin 2πks: Re gives the cosine, −Im the sine
    G = torch.where((kind == 0).to(x.device)[:, None, :], re, im)
    return nested_l2_sq(G, x)


def _ideal(x, n_max, basis, strategy):
    if basis == "haar":
        if strategy == "best":
            return bases.haar_best_l2_sq(x)[:, 1:n_max + 1]
        c2 = bases.haar_coefficients(x)[:, :n_max] ** 2
    elif strategy == "partial":
        return bases.fourier_partial_l2_sq(x)[:, 1:n_max + 1]
    elif strategy == "best":
        return bases.fourier_best_l2_sq(x)[:, 1:n_max + 1]
    return ((x ** 2).mean(-1, keepdim=True) - torch.cumsum(c2, -1)).clamp_min(0)


def _learned(m, basis, n_values, trials, *, samples, seed, steps, restarts, device, backend):
    """Train at each N of ``n_values``: (T, n_max) l2_sq (NaN elsewhere) and per-N diagnostics."""
    x = signals.piecewise(m, samples, seed, batch=trials, device=device)
    breaks = torch.as_tensor(signals.piecewise_params(m, seed, trials)[0], device=device)
    out, info = {}, []
    for n in n_values:
        if basis == "mamba":
            r = train_mamba_bases(x, n, steps=steps, seed=seed + n, restarts=restarts, backend=backend)
            rep = breakpoint_report(r["t_hat"], r["w"], r["lam"], breaks, samples)
            good = r["l2_sq"] < LEARNED_THRESHOLD
            extra = {"jumps_within_2_cells": int((rep["jump_dist"] <= 2.0 / samples).sum()),
                     "sharp_per_trial_median": float(rep["n_sharp"].double().median()),
                     "good_with_m_sharp_at_jumps": int((good & (rep["jump_dist"] <= 2.0 / samples)).sum()),
                     "abs_w_median_sharp": float(r["w"].abs()[rep["sharp"]].median()) if rep["sharp"].any()
                     else None,
                     "lam_median_sharp": float(r["lam"][rep["sharp"]].median()) if rep["sharp"].any() else None,
                     "edge_width_median_sharp": float(rep["edge_width"][rep["sharp"]].median())
                     if rep["sharp"].any() else None}
        else:
            r = train_s4d_bases(x, n, steps=steps, seed=seed + n, restarts=restarts, backend=backend)
            extra = {"re_lam_median": float(r["lam"].real.median()),
                     "abs_im_lam_median": float(r["lam"].imag.abs().median())}
        out[n] = r["l2_sq"]
        info.append({"n": n, "below_threshold": int((r["l2_sq"] < LEARNED_THRESHOLD).sum()), "trials": trials,
                     "threshold": LEARNED_THRESHOLD, "median_l2_sq": float(r["l2_sq"].median()),
                     "final_loss": r["loss"][-1] if r["loss"] else None, "train_s": round(r["wall_s"], 3),
                     **extra})
    return x, out, info


def compute_unit(m, basis, strategy, *, n_max, trials, samples, seed, sharpness=None, time="pe", device="cpu",
                 backend="auto", learned_n=None, learned_steps=600, learned_samples=128, learned_restarts=8):
    """``l2_sq`` (T, n_max) of one unit, each trial's floor (T,), and extra facts (a dict).

    The signals are ``signals.piecewise(m, samples, seed, batch=trials)``; learned units train on the same signals
    sampled with ``learned_samples`` points and fill only the N of ``learned_n`` (default m + 1), NaN elsewhere.
    """
    dev = torch.device(device)
    extra = {}
    if strategy == "learned":
        n_values = sorted(set(learned_n or [min(m + 1, n_max)]))
        x, got, info = _learned(m, basis, n_values, trials, samples=learned_samples, seed=seed, steps=learned_steps,
                                restarts=learned_restarts, device=dev, backend=backend)
        l2 = torch.full((trials, n_max), float("nan"), dtype=torch.float64)
        for n, v in got.items():
            l2[:, n - 1] = v.cpu()
        floor = FLOOR_REL * (x ** 2).mean(-1).cpu()
        extra.update(learned=info, samples=learned_samples)
        return l2.numpy(), floor.numpy(), extra
    breaks, levels = signals.piecewise_params(m, seed, trials)
    x_all = signals.piecewise(m, samples, seed, batch=trials, device=dev)
    sharp = bases.default_sharpness(samples) if sharpness is None else sharpness
    parts, floors = [], []
    shared = None
    K = {"mamba": 3 * (n_max // 3) + m + 1}.get(basis, n_max)
    if basis == "s4d" and strategy != "best":
        # one basis for all trials: built once; a trial then costs only its signal (and the (L, N) basis)
        shared = _s4d_shared(n_max, strategy, samples, backend=backend, device=dev)
        K = 1
    for a, b in _chunks(trials, samples, K, dev):
        x = x_all[a:b]
        floor = FLOOR_REL * (x ** 2).mean(-1)
        if basis == "mamba":
            hv = _mamba_heaviside(x, breaks[a:b], levels[a:b], max(n_max, m + 1), sharpness=sharp, time=time,
                                  backend=backend)
            floor = torch.maximum(floor, hv[:, m])
            err = hv[:, :n_max] if strategy == "heaviside" else \
                _mamba_haar(x, n_max, sharpness=sharp, time=time, backend=backend)
        elif basis == "s4d":
            err = nested_l2_sq(shared, x) if shared is not None else _s4d_best(x, n_max, backend=backend)
        else:
            err = _ideal(x, n_max, basis, strategy)
        parts.append(err.cpu())
        floors.append(floor.cpu())
    if basis == "mamba":
        extra.update(sharpness=sharp, lam=1.0, time=time)
    return torch.cat(parts).numpy(), torch.cat(floors).numpy(), extra


# --- the sweep -------------------------------------------------------------------------------------------------

@dataclass
class RateSweep:
    """A finished sweep: its configuration, one entry per unit, and the per-trial errors.

    units : list of dicts — m, basis, strategy, key, reused, wall_s, summary (per-N statistics,
        :func:`approx.rate_fit.summarize`), fit (:func:`approx.rate_fit.fit_rate`), theory, verdict,
        floor_n (first N with half of the trials at their floor), extra (sharpness, learned diagnostics).
    arrays : {(m, basis, strategy): (l2_sq (T, n_max), floor (T,))}.
    """

    config: dict
    units: list
    arrays: dict = field(repr=False)
    device: str = "cpu"
    wall_s: float = 0.0

    def record(self) -> dict:
        """The DESIGN §4 record of the sweep (per-unit summaries and fits; per-trial arrays stay in the store)."""
        return make_record(self.config, {"units": self.units}, seed=self.config["seed"], device=self.device,
                           wall_s=self.wall_s)

    def unit(self, m, basis, strategy) -> dict:
        for u in self.units:
            if (u["m"], u["basis"], u["strategy"]) == (m, basis, strategy):
                return u
        raise KeyError((m, basis, strategy))

    def csv_rows(self) -> list:
        """Rows (m, basis, strategy, N, mean, std, geomean, p10, p50, p90, at_floor) of every unit."""
        rows = []
        for u in self.units:
            s = u["summary"]
            for i in range(len(s["mean"])):
                rows.append([u["m"], u["basis"], u["strategy"], i + 1] +
                            [s[k][i] for k in ("mean", "std", "geomean", "p10", "p50", "p90", "at_floor")])
        return rows


CSV_HEADER = ["m", "basis", "strategy", "N", "l2_sq_mean", "l2_sq_std", "l2_sq_geomean", "l2_sq_p10",
              "l2_sq_p50", "l2_sq_p90", "frac_at_floor"]


def unit_config(m, basis, strategy, *, signal, n_max, trials, samples, seed, sharpness, time, device,
                learned_n, learned_steps, learned_samples, learned_restarts) -> dict:
    """The configuration that keys one unit in the store (what determines its numbers)."""
    cfg = {"kind": "approx.rates.unit", "schema": SCHEMA, "signal": signal, "m": m, "basis": basis,
           "strategy": strategy, "n_max": n_max, "trials": trials, "seed": seed, "device": device,
           "dtype": "float64"}
    if strategy == "learned":
        cfg.update(samples=learned_samples, learned_n=sorted(set(learned_n or [min(m + 1, n_max)])),
                   learned_steps=learned_steps, learned_restarts=learned_restarts)
    else:
        cfg["samples"] = samples
    if basis == "mamba" and strategy != "learned":
        cfg.update(sharpness="auto" if sharpness is None else float(sharpness), time=time)
    return cfg


def _analyse(m, basis, strategy, l2_sq, floor, seed):
    th = theory(basis, strategy, m)
    out = {"summary": summarize(l2_sq, floor), "theory": th, "floor_n": first_at_floor(l2_sq, floor)}
    if th["law"] == "floor":
        out["fit"] = {"law": "floor", "estimate": None}
    else:
        out["fit"] = fit_rate(l2_sq, floor, law=th["law"], n_lo=th["n_lo"], stride=th.get("stride", 1), seed=seed)
    out["verdict"] = verdict(out["fit"], th, m, strategy=strategy)
    if strategy == "learned" and out["fit"].get("estimate") is None:
        trained = [int(n) for n in np.nonzero(~np.isnan(l2_sq).all(0))[0] + 1]
        out["verdict"] = (f"trained at N = {', '.join(map(str, trained))}: no rate fitted (that needs three trained N "
                          f"from N = {th['n_lo']} on; give them with --learned-n); the learned errors are above")
    return out


def _match_haar(results, arrays, seed):
    """Mamba-Haar at N uses the N // 3 best atoms: refit ideal Haar over the atoms the Mamba-Haar fit range
    covers (N/3), so c(Mamba-Haar)/c(Haar) compares the same part of the curve (theory: 3). Adds
    ``matched_haar`` (the refit) and ``c_ratio`` to each mamba/haar entry with a haar/best partner."""
    for u in results:
        if (u["basis"], u["strategy"]) != ("mamba", "haar") or u["fit"].get("estimate") is None:
            continue
        key = (u["m"], "haar", "best")
        if key not in arrays:
            continue
        lo, hi = u["fit"]["n_range"]
        f = fit_rate(*arrays[key], law="exp", n_lo=-(-lo // 3), n_hi=hi // 3, seed=seed)
        u["matched_haar"] = f
        if f.get("estimate") and math.isfinite(f["estimate"]) and math.isfinite(u["fit"]["estimate"]):
            u["c_ratio"] = u["fit"]["estimate"] / f["estimate"]


def rate_sweep(*, signal: str = "piecewise", m=DEFAULT_M, basis=("s4d", "mamba"), strategy=None,
               reference: bool = True, n_max: int = 64, trials: int = 100, samples: int = 4096, seed: int = 0,
               sharpness=None, time: str = "pe", device: str = "auto", backend: str = "auto", store=None,
               progress: bool = True, learned_n=None, learned_steps: int = 600, learned_samples: int = 128,
               learned_restarts: int = 8) -> RateSweep:
    """Run (or read back from ``store``) the rate sweep and fit its rates.

    Parameters
    ----------
    signal : ``"piecewise"`` (the only signal with a parameter m of Cor. 1).
    m, basis, strategy, reference : what to run, expanded by :func:`plan_units`.
    n_max, trials, samples, seed : N = 1..n_max; T trials; L grid points (a power of two for Haar/Mamba);
        trial t of each m is ``signals.piecewise(m, L, seed)``'s trial t.
    sharpness, time : the Mamba Heavisides' |w| (``None`` → 64 L²) and time channel.
    device, backend : ``"auto"``/``"cpu"``/``"cuda"``; the scan backend.
    store : a path (or :class:`approx.store.Store`) to read finished units from and write new ones to;
        ``None`` keeps nothing.
    learned_n, learned_steps, learned_samples, learned_restarts : for ``strategy="learned"`` — the N trained
        (default m + 1), Adam steps, the (smaller) grid, random starts per trial.

    Returns
    -------
    :class:`RateSweep`.
    """
    start = _time.perf_counter()
    if signal != "piecewise":
        raise ValueError(f"approx rates needs --signal piecewise (the m-jump signals of Cor. 1), got {signal!r}")
    ms = [m] if isinstance(m, int) else list(m)
    units = plan_units(ms, basis if not isinstance(basis, str) else [basis],
                       [strategy] if isinstance(strategy, str) else strategy, reference=reference)
    learned_n = list(learned_n or [])
    check_sweep(n_max=n_max, trials=trials, samples=samples, seed=seed, sharpness=sharpness, time=time,
                learned_n=learned_n, learned_steps=learned_steps, learned_samples=learned_samples,
                learned_restarts=learned_restarts, units=units)
    dev = resolve_device(device)
    sweep_config = {"kind": "approx.rates", "signal": signal, "m": list(dict.fromkeys(ms)),
                    "units": [[b, s] for b, s in dict.fromkeys((b, s) for _, b, s in units)], "n_max": n_max,
                    "trials": trials, "samples": samples, "seed": seed,
                    "sharpness": "auto" if sharpness is None else sharpness, "time": time, "device": dev.type}
    if any(s == "learned" for _, _, s in units):
        sweep_config.update(learned_n=learned_n or "m+1", learned_steps=learned_steps,
                            learned_samples=learned_samples, learned_restarts=learned_restarts)
    own = isinstance(store, (str, bytes)) or hasattr(store, "__fspath__")
    db = Store(store) if own else store
    results, arrays = [], {}
    try:
        bar = tqdm(units, desc="approx rates", unit="unit", disable=None if progress else True, leave=False)
        for m_, b, s in bar:
            bar.set_postfix_str(f"m={m_} {b}/{s}")
            cfg = unit_config(m_, b, s, signal=signal, n_max=n_max, trials=trials, samples=samples, seed=seed,
                              sharpness=sharpness, time=time, device=dev.type, learned_n=learned_n,
                              learned_steps=learned_steps, learned_samples=learned_samples,
                              learned_restarts=learned_restarts)
            hit = db.get(cfg) if db is not None else None
            if hit is not None:
                rec, arr = hit
                l2_sq, floor, extra, wall = arr["l2_sq"], arr["floor"], rec["metrics"]["extra"], rec["wall_s"]
            else:
                t0 = _time.perf_counter()
                l2_sq, floor, extra = compute_unit(m_, b, s, n_max=n_max, trials=trials, samples=samples, seed=seed,
                                                   sharpness=sharpness, time=time, device=dev, backend=backend,
                                                   learned_n=learned_n, learned_steps=learned_steps,
                                                   learned_samples=learned_samples,
                                                   learned_restarts=learned_restarts)
                wall = _time.perf_counter() - t0
                if db is not None:
                    rec = make_record(cfg, {"extra": extra}, seed=seed, device=dev, wall_s=wall)
                    db.put(cfg, rec, {"l2_sq": l2_sq, "floor": floor})
            entry = {"m": m_, "basis": b, "strategy": s, "key": Store.key(cfg), "reused": hit is not None,
                     "wall_s": round(float(wall), 4), "extra": extra}
            entry.update(_analyse(m_, b, s, l2_sq, floor, seed))
            results.append(entry)
            arrays[(m_, b, s)] = (l2_sq, floor)
    finally:
        if own and db is not None:
            db.close()
    _match_haar(results, arrays, seed)
    return RateSweep(config=sweep_config, units=results, arrays=arrays, device=str(dev),
                     wall_s=_time.perf_counter() - start)


def fit_table(sweep: RateSweep) -> list:
    """Rows of the rate table: m, basis/strategy, law, estimate, CI, fit range, theory, ratio to theory."""
    rows = []
    for u in sweep.units:
        f, th = u["fit"], u["theory"]
        est = f.get("estimate")
        rows.append({"m": u["m"], "unit": f"{u['basis']}/{u['strategy']}", "law": th["law"],
                     "name": f.get("name", "-"), "estimate": est, "ci": f.get("ci"), "n_range": f.get("n_range"),
                     "theory": th["value"], "ratio": (est / th["value"]) if est is not None and th["value"] and
                     math.isfinite(est) else None, "floor_n": u["floor_n"], "verdict": u["verdict"]})
    return rows
