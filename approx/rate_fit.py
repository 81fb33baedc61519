"""Approximation rates fitted to error curves, with confidence intervals, beside the rates of Cor. 1.

A curve is ``l2_sq`` (DESIGN §1: the squared grid L² error) of T trials at N = 1..n_max basis functions, an array
(T, n_max) (NaN where an N was not computed). Two laws are fitted to the mean over trials of log2 ``l2_sq`` (the
log of the geometric mean, so that a few trials with large constants do not set the rate):

- power law ``l2_sq ≈ a · N^p`` (S4D and Fourier; Cor. 1 and eq. 27 give p = −1);
- exponential law ``l2_sq ≈ a · 2^(−N/c)`` (Haar: c = m, eqs. 28-31; Mamba-Haar: c = 3m, Thm. 1 + Cor. 1).

The fit range is chosen from the data (:func:`choose_fit_range`) and reported. The 95 % confidence interval comes
from a bootstrap over trials (resample the T trials with replacement, refit), which carries the trial-to-trial
spread of the random signals into the interval.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

#: Relative numerical floor: an error below ``FLOOR_REL · ‖x‖²`` is exact up to float64 rounding.
FLOOR_REL = 1e-12
#: A trial counts as "at its floor" from the first N where its error is within this factor of its floor.
FLOOR_MARGIN = 100.0
#: The fit range ends before the first N where more than this fraction of trials is at its floor.
FLOOR_FRACTION = 0.1

LAWS = ("power", "exp")


def log2_curves(l2_sq: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """log2 of ``l2_sq`` (T, n) clipped below at each trial's ``floor`` (T,) (NaN stays NaN)."""
    return np.log2(np.maximum(l2_sq, floor[:, None]))


def summarize(l2_sq: np.ndarray, floor: np.ndarray) -> dict:
    """Per-N statistics over trials of ``l2_sq`` (T, n): mean and std, and — of the errors clipped below at each
    trial's floor — the geometric mean and the 10/50/90 % quantiles; and the fraction of trials at their floor.
    Each a list of length n (``None`` where no trial has a value, so that the JSON record stays valid)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # N never computed (learned): NaN, said above
        at_floor = np.where(np.isnan(l2_sq), np.nan, (l2_sq <= FLOOR_MARGIN * floor[:, None]).astype(float))
        clipped = np.maximum(l2_sq, floor[:, None])
        out = {
            "mean": np.nanmean(l2_sq, 0),
            "std": np.nanstd(l2_sq, 0),
            "geomean": np.exp2(np.nanmean(log2_curves(l2_sq, floor), 0)),
            "p10": np.nanquantile(clipped, 0.1, 0),
            "p50": np.nanquantile(clipped, 0.5, 0),
            "p90": np.nanquantile(clipped, 0.9, 0),
            "at_floor": np.nanmean(at_floor, 0),
        }
    return {k: [None if math.isnan(v) else v for v in a.tolist()] for k, a in out.items()}


def choose_fit_range(l2_sq: np.ndarray, floor: np.ndarray, *, n_lo: int, n_hi: int | None = None, stride: int = 1,
                     min_points: int = 3):
    """The range [n_lo, n_hi] of N (1-based, inclusive) over which a rate is fitted.

    It starts at ``n_lo`` (the caller skips the pre-asymptotic first N) and ends at the last N before more than
    ``FLOOR_FRACTION`` of the trials come within ``FLOOR_MARGIN`` of their floor (the grid/rounding floor, or the
    sharpness floor of approximate Heavisides), or at the last computed N, or at ``n_hi`` if given. Only N where every trial has a value,
    and with ``stride > 1`` only multiples of ``stride`` (Mamba-Haar adds an atom every 3 bases), are used. Returns ``(n_lo, n_hi, ns)`` with ``ns`` the N values used, or ``None`` when fewer than ``min_points``
    remain.
    """
    T, n_max = l2_sq.shape
    with np.errstate(invalid="ignore"):
        frac = (l2_sq <= FLOOR_MARGIN * floor[:, None]).mean(0)
    complete = ~np.isnan(l2_sq).any(0)
    ns = []
    for n in range(max(n_lo, 1), min(n_max, n_hi or n_max) + 1):
        if frac[n - 1] > FLOOR_FRACTION:
            break
        if complete[n - 1] and n % stride == 0:
            ns.append(n)
    if len(ns) < min_points:
        return None
    return ns[0], ns[-1], np.asarray(ns)


def _slopes(x: np.ndarray, Y: np.ndarray) -> tuple:
    """Least-squares slope and intercept of each row of Y (B, n) against x (n,)."""
    xc = x - x.mean()
    slope = (Y - Y.mean(-1, keepdims=True)) @ xc / (xc @ xc)
    return slope, Y.mean(-1) - slope * x.mean()


def fit_rate(l2_sq: np.ndarray, floor: np.ndarray, *, law: str, n_lo: int, n_hi: int | None = None,
             stride: int = 1, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Fit a rate law to ``l2_sq`` (T, n_max) with each trial's ``floor`` (T,).

    ``law="power"``: log2 l2_sq = log2 a + p · log2 N, returns ``p``;
    ``law="exp"``:   log2 l2_sq = log2 a − N / c, returns ``c`` (c = −1/slope; ``inf`` when not decaying).
    The range starts at ``n_lo`` and ends at the floor (:func:`choose_fit_range`) or at ``n_hi``.

    Returns a dict with the estimate, its bootstrap interval ``ci`` at ``level``, the intercept ``log2_a``,
    ``r2`` of the fit to the geometric-mean curve, the fit range ``n_range`` = [n_lo, n_hi] and ``points``; or
    ``{"law": law, "estimate": None, "reason": …}`` when the range holds fewer than three N.
    """
    if law not in LAWS:
        raise ValueError(f"law must be one of {LAWS}, got {law!r}")
    l2_sq = np.asarray(l2_sq, dtype=float)
    floor = np.asarray(floor, dtype=float)
    rng = choose_fit_range(l2_sq, floor, n_lo=n_lo, n_hi=n_hi, stride=stride)
    if rng is None:
        return {"law": law, "estimate": None,
                "reason": f"fewer than 3 values of N from N = {n_lo} before the floor"}
    lo, hi, ns = rng
    Y = log2_curves(l2_sq[:, ns - 1], floor)                      # (T, n)
    x = np.log2(ns.astype(float)) if law == "power" else ns.astype(float)
    slope, icpt = _slopes(x, Y.mean(0)[None])
    slope, icpt = float(slope[0]), float(icpt[0])
    resid = Y.mean(0) - (icpt + slope * x)
    ss_tot = ((Y.mean(0) - Y.mean()) ** 2).sum()
    r2 = float(1 - (resid ** 2).sum() / ss_tot) if ss_tot > 0 else 1.0
    gen = np.random.default_rng(seed)
    idx = gen.integers(0, Y.shape[0], size=(n_boot, Y.shape[0]))
    boot, _ = _slopes(x, Y[idx].mean(1))                          # (n_boot,)
    q = (1 - level) / 2
    s_lo, s_hi = np.quantile(boot, [q, 1 - q])
    out = {"law": law, "n_range": [int(lo), int(hi)], "points": int(len(ns)), "r2": r2, "log2_a": icpt,
           "slope": slope, "slope_ci": [float(s_lo), float(s_hi)], "level": level, "trials": int(Y.shape[0])}
    if law == "power":
        out.update(name="p", estimate=slope, ci=[float(s_lo), float(s_hi)])
    else:
        def c_of(s):
            return -1.0 / s if s < 0 else math.inf
        out.update(name="c", estimate=c_of(slope), ci=[c_of(s_lo), c_of(s_hi)])
    return out


def first_at_floor(l2_sq: np.ndarray, floor: np.ndarray, fraction: float = 0.5, margin: float = 2.0):
    """Smallest N (1-based) at which at least ``fraction`` of the trials are within a factor ``margin`` of their
    floor (where a curve *reaches* its floor), or ``None``."""
    with np.errstate(invalid="ignore"):
        frac = (np.asarray(l2_sq) <= margin * np.asarray(floor)[:, None]).mean(0)
    hits = np.nonzero(frac >= fraction)[0]
    return int(hits[0]) + 1 if len(hits) else None


# --- theory ---------------------------------------------------------------------------------------------------

def theory(basis: str, strategy: str, m: int) -> dict:
    """What Cor. 1 says for one (basis, strategy) on piecewise-constant signals with m jumps.

    Returns ``{"law", "value", "bound", "statement", "n_lo", "stride"}``: the law fitted, the paper's value
    (p = −1, c = m or 3m), whether it is an upper bound on the decay constant, a one-line statement with equation
    numbers, the first N of the fit range (the pre-asymptotic N are skipped: the first three for the power law, the
    first m + 1 Haar terms — 3 Mamba bases each — for the exponential law), and the stride of the N fitted. ``law`` is ``"floor"`` for the Heaviside
    construction, which is exact at N = m + 1 up to the grid/sharpness floor.
    """
    if basis in ("s4d", "fourier"):
        return {"law": "power", "value": -1.0, "bound": False, "n_lo": 4, "stride": 1,
                "statement": "l2_sq = O(N^-1): Fourier coefficients of a jump decay as 1/n (eq. 27), so the tail "
                             "sum of squares after N terms is O(1/N) (Cor. 1); the plain l2 decays as N^-1/2"}
    if basis == "haar":
        return {"law": "exp", "value": float(m), "bound": True, "n_lo": m + 2, "stride": 1,
                "statement": f"l2_sq = O(2^(-N/m)), c <= m = {m}: best N-term Haar, one nonzero wavelet per "
                             f"scale and jump (eqs. 28-31); an upper bound on c"}
    if basis == "mamba" and strategy == "heaviside":
        return {"law": "floor", "value": float(m + 1), "bound": False, "n_lo": 1, "stride": 1,
                "statement": f"exact at N = m + 1 = {m + 1} Heavisides at the jumps (eqs. 20-22), up to the "
                             f"floor set by L and |w|"}
    if basis == "mamba":
        learned = strategy == "learned"
        return {"law": "exp", "value": 3.0 * m, "bound": True, "n_lo": m + 2 if learned else 3 * (m + 2),
                "stride": 1 if learned else 3,
                "statement": f"l2_sq = O(2^(-N/3m)), c <= 3m = {3 * m}: 3 Mamba bases per Haar wavelet "
                             f"(eq. 18, Thm. 1) on top of the Haar rate (Cor. 1); an upper bound on c"}
    raise ValueError(f"no theory for basis {basis!r} with strategy {strategy!r}")


def verdict(fit: dict, th: dict, m: int, *, strategy: str = "") -> str:
    """One sentence comparing a measured rate with the theory, saying why they differ where they do."""
    if th["law"] == "floor":
        return th["statement"]
    if fit.get("estimate") is None:
        return f"no fit: {fit.get('reason', 'no range')}"
    lo, hi = fit["ci"]
    if th["law"] == "power":
        p = fit["estimate"]
        if abs(p - th["value"]) <= 0.15:
            return "matches p = -1 of l2_sq (squared norm; plain l2 ~ N^-1/2)"
        why = []
        if strategy == "best":
            why.append("best-N-term picks the largest coefficients, not the partial sum of eq. 27")
        if strategy in ("lin", "learned"):
            why.append("damped or learned exponentials are not the Fourier basis the bound is proved for")
        if p < th["value"]:
            why.append("faster than N^-1 over this range (pre-asymptotic, or aliasing as N nears L/2)")
        else:
            why.append("slower than N^-1 over this range (the 1/n coefficients have not settled)")
        return "differs from p = -1: " + "; ".join(why)
    c, cth = fit["estimate"], th["value"]
    if c <= 1.25 * cth:
        if strategy == "learned":
            reason = "trained by gradient descent, which the bound does not cover"
        elif c >= cth:
            reason = "at the bound"
        else:
            reason = (f"c < {cth:g}: at coarse scales several jumps share one wavelet, so fewer than m coefficients "
                      f"are nonzero per scale, and best N-term picks large coefficients across scales")
        return f"decays at least as fast as the bound 2^(-N/{cth:g}) (c = {c:.2f} <= 1.25*{cth:g}); {reason}"
    return (f"slower than the bound 2^(-N/{cth:g}) (c = {c:.2f}): the range reaches the floor set by L "
            f"(at most log2 L scales) and, for Mamba, by the sharpness |w| of the Heavisides (eq. 22)")
