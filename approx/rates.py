"""The rate sweep of Cor. 1: ``l2_sq`` against N for S4D, Mamba, Haar and Fourier bases on random piecewise-constant
signals with m jumps.

For each m and each (basis, strategy) of the one table :mod:`approx.registry` — a *unit* — T seeded random signals
(trial t draws from ``np.random.default_rng((seed, t))``, :func:`signals.piecewise`) are approximated with
N = 1..n_max basis functions. All trials and all N of a unit are one batched computation: the entry's sweep builder
(:mod:`approx.families`) realises every trial's basis functions at once (through the scan for the SSM bases),
ordered by selection, and :func:`approx.lstsq.nested_l2_sq` gives ``l2_sq`` for every N in one pass (orthonormal
dictionaries use their coefficients directly). Trials are chunked only to bound memory. Learned strategies train
their bases instead (on a smaller grid) and fill only the N they trained.

Each unit's floor: ``FLOOR_REL·‖x‖²`` (rounding), and where the entry states one its own floor (for Mamba the
error of the m + 1 Heavisides at the true jumps at the chosen sharpness |w|, eq. 22). Results go to the SQLite
store (:mod:`approx.store`), one row per unit keyed by the hash of its configuration, so a finished unit is reused
and a killed sweep redoes only the missing units.
"""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

import signals
from kernels import free_memory, resolve_device
from signals.checks import check_int

from . import bases, registry
from .rate_fit import FLOOR_REL, first_at_floor, fit_rate, summarize, verdict
from .records import device_label, make_record
from .store import Store

DEFAULT_M = (1, 2, 3, 5)
#: bytes of float64 work arrays per chunk of trials (about four (chunk, L, K) arrays live at once)
CHUNK_BYTES = {"cpu": 2 ** 30, "cuda": 2 ** 32}
SCHEMA = 1


def default_strategies(basis: str) -> list:
    """The strategies a sweep runs for ``basis`` when none is named (learned strategies train: asked for
    explicitly)."""
    names = [e.name for e in registry.entries() if e.basis == basis and e.default_rates]
    return names or [registry.get(basis).name]


def plan_units(ms, bases_=("s4d", "mamba"), strategies=None, *, reference: bool = True) -> list:
    """The units (m, basis, strategy) of a sweep, in run order.

    ``strategies=None`` runs each basis's :func:`default_strategies`; otherwise each listed strategy runs on every
    listed basis that has it, and a strategy that none of them has is an error. ``reference`` adds the entries
    marked as references (ideal Haar best N-term, Fourier partial sums).
    """
    ms = [check_int("m", m, 0) for m in ms]
    if not ms:
        raise ValueError("m must hold at least one value")
    bases_ = list(dict.fromkeys(bases_))
    if not bases_:
        raise ValueError("basis must hold at least one value")
    for b in bases_:
        registry.get(b)
    if not strategies:
        pairs = [(b, s) for b in bases_ for s in default_strategies(b)]
    else:
        for s in dict.fromkeys(strategies):
            if not any(s in registry.strategies(b) for b in bases_):
                known = sorted({x for b in bases_ for x in registry.strategies(b)})
                raise ValueError(f"strategy {s!r} belongs to none of the bases {', '.join(bases_)}; choose from "
                                 f"{', '.join(known)}")
        pairs = [(b, s) for b in bases_ for s in registry.strategies(b) if s in strategies]
    if reference:
        pairs += [e.key for e in registry.entries() if e.reference and e.key not in pairs]
    return [(m, b, s) for m in dict.fromkeys(ms) for b, s in pairs]


def check_sweep(*, n_max, trials, samples, seed, time, learned_n, learned_steps, learned_samples,
                learned_restarts, units):
    """Validate a sweep's numbers against its units; raise ValueError naming the bad argument."""
    check_int("n_max", n_max, 1)
    check_int("trials", trials, 1)
    check_int("seed", seed, 0)
    signals.check_length(samples)
    if time not in bases.TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(bases.TIME_MODES)}, got {time!r}")
    entries = [registry.get(b, s) for b, s in dict.fromkeys((b, s) for _, b, s in units)]
    for e in entries:
        if e.train is not None:
            continue
        if e.power_of_two:
            bases.check_power_of_two(samples)
        e.check_n(n_max, samples, what="n_max")
    if any(e.train is not None for e in entries):
        for n in learned_n:
            check_int("learned_n", n, 1)
            if n > n_max:
                raise ValueError(f"learned_n = {n} exceeds n_max = {n_max}")
        check_int("learned_steps", learned_steps, 0)
        check_int("learned_restarts", learned_restarts, 1)
        signals.check_length(learned_samples)
    elif learned_n:
        raise ValueError("learned_n applies only to learned strategies, and the sweep runs none")


def estimate_bytes(units, *, n_max, trials, samples, device) -> int:
    """The largest float64 working set of one chunk of trials of any unit: what the sweep needs free."""
    need = 0
    for m, b, _ in units:
        K = 3 * (n_max // 3) + m + 1 if b == "mamba" else n_max
        per_trial = 4 * samples * max(K, 1) * 8
        chunk = max(1, CHUNK_BYTES.get(device.type, CHUNK_BYTES["cpu"]) // per_trial)
        need = max(need, per_trial * min(trials, chunk))
    return need


# --- one unit --------------------------------------------------------------------------------------------------

def _chunks(T, L, K, device):
    per_trial = 4 * L * max(K, 1) * 8
    size = max(1, CHUNK_BYTES.get(device.type, CHUNK_BYTES["cpu"]) // per_trial)
    return [(a, min(a + size, T)) for a in range(0, T, size)]


def compute_unit(m, basis, strategy, *, n_max, trials, samples, seed, sharpness=None, time="pe", device="cpu",
                 backend="auto", learned_n=None, learned_steps=600, learned_samples=128, learned_restarts=8):
    """``l2_sq`` (T, n_max) of one unit, each trial's floor (T,), and extra facts (a dict).

    The signals are ``signals.piecewise(m, samples, seed, batch=trials)``; learned units train on the same signals
    sampled with ``learned_samples`` points and fill only the N of ``learned_n`` (default m + 1), NaN elsewhere.
    """
    entry = registry.get(basis, strategy)
    dev = torch.device(device)
    L = learned_samples if entry.train is not None else samples
    settings = registry.Settings(sharpness=bases.resolve_sharpness(sharpness, L), time=time, backend=backend)
    uses_sharpness = basis == "mamba" and entry.train is None
    extra = {"sharpness": settings.sharpness, "lam": 1.0, "time": time} if uses_sharpness else {}
    if entry.train is not None:
        n_values = sorted(set(learned_n or [min(m + 1, n_max)]))
        options = {"samples": learned_samples, "seed": seed, "steps": learned_steps, "restarts": learned_restarts,
                   "device": dev}
        x, got, info = entry.train(m, n_values, trials, settings, options)
        l2 = torch.full((trials, n_max), float("nan"), dtype=torch.float64)
        for n, v in got.items():
            l2[:, n - 1] = v.cpu()
        floor = FLOOR_REL * (x ** 2).mean(-1).cpu()
        extra.update(learned=info, samples=learned_samples)
        return l2.numpy(), floor.numpy(), extra
    breaks, levels = signals.piecewise_params(m, seed, trials)
    x_all = signals.piecewise(m, samples, seed, batch=trials, device=dev)
    K = 3 * (n_max // 3) + m + 1 if basis == "mamba" else n_max
    parts, floors = [], []
    for a, b in _chunks(trials, samples, K, dev):
        x, params = x_all[a:b], (breaks[a:b], levels[a:b])
        floor = FLOOR_REL * (x ** 2).mean(-1)
        if entry.floor is not None:
            floor = torch.maximum(floor, entry.floor(x, settings, params))
        parts.append(entry.sweep(x, n_max, settings, params).cpu())
        floors.append(floor.cpu())
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
        """The record of the sweep (docs/design.md §4; per-unit summaries and fits, per-trial arrays in the store)."""
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
    entry = registry.get(basis, strategy)
    th = entry.theory(m) if entry.theory is not None else {"law": None, "value": None, "bound": False,
                                                              "statement": "no rate is stated for it"}
    out = {"summary": summarize(l2_sq, floor), "theory": th, "floor_n": first_at_floor(l2_sq, floor)}
    if th["law"] in ("floor", None):
        out["fit"] = {"law": th["law"], "estimate": None}
    else:
        out["fit"] = fit_rate(l2_sq, floor, law=th["law"], n_lo=th["n_lo"], stride=th.get("stride", 1), seed=seed)
    out["verdict"] = verdict(out["fit"], th, m)
    if entry.train is not None and out["fit"].get("estimate") is None:
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
        raise ValueError(f"signal must be 'piecewise' (the m-jump signals of Cor. 1), got {signal!r}")
    ms = [m] if isinstance(m, int) else list(m)
    units = plan_units(ms, basis if not isinstance(basis, str) else [basis],
                       [strategy] if isinstance(strategy, str) else strategy, reference=reference)
    learned_n = list(learned_n or [])
    if sharpness is not None:
        sharpness = bases.resolve_sharpness(sharpness, samples)
    check_sweep(n_max=n_max, trials=trials, samples=samples, seed=seed, time=time,
                learned_n=learned_n, learned_steps=learned_steps, learned_samples=learned_samples,
                learned_restarts=learned_restarts, units=units)
    dev = resolve_device(device)
    need, free = estimate_bytes(units, n_max=n_max, trials=trials, samples=samples, device=dev), free_memory(dev)
    if need > free:
        raise ValueError(f"the sweep needs about {need / 2**30:.1f} GiB of working memory per unit; "
                         f"{free / 2**30:.1f} GiB are free on {dev} (lower n_max, samples or trials)")
    sweep_config = {"kind": "approx.rates", "signal": signal, "m": list(dict.fromkeys(ms)),
                    "units": [[b, s] for b, s in dict.fromkeys((b, s) for _, b, s in units)], "n_max": n_max,
                    "trials": trials, "samples": samples, "seed": seed,
                    "sharpness": "auto" if sharpness is None else sharpness, "time": time, "device": dev.type}
    if any(registry.get(b, s).train is not None for _, b, s in units):
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
    return RateSweep(config=sweep_config, units=results, arrays=arrays, device=device_label(dev),
                     wall_s=_time.perf_counter() - start)


def fit_table(sweep: RateSweep) -> list:
    """Rows of the rate table: m, basis/strategy, law, estimate, CI, fit range, theory, ratio to theory."""
    rows = []
    for u in sweep.units:
        f, th = u["fit"], u["theory"]
        est = f.get("estimate")
        rows.append({"m": u["m"], "unit": f"{u['basis']}/{u['strategy']}", "law": th["law"] or "-",
                     "name": f.get("name", "-"), "estimate": est, "ci": f.get("ci"), "n_range": f.get("n_range"),
                     "theory": th["value"], "ratio": (est / th["value"]) if est is not None and th["value"] and
                     math.isfinite(est) else None, "floor_n": u["floor_n"], "verdict": u["verdict"]})
    return rows
