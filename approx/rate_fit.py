"""Approximation rates fitted to error curves, with confidence intervals, beside the rates of Cor. 1.

A curve is ``l2_sq`` (docs/design.md §1: the squared grid L² error) of T trials at N = 1..n_max basis functions, an array
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


# --- verdicts ------------------------------------------------------------------------------------------------

#: a fitted power p within this distance of the theory's counts as matching it
POWER_TOLERANCE = 0.15
#: a fitted decay constant c up to this factor above a bound c_th counts as consistent with it (the fit range is
#: short and ends at the floor, so c carries a few tens of percent of range dependence; docs/rates.md)
EXP_TOLERANCE = 1.25


def _haar_reason(m: int) -> str:
    """Why a best-N-term Haar (or Mamba-Haar) curve decays faster than one wavelet per scale and jump."""
    if m <= 1:
        return ("the coefficient of the wavelet holding the jump depends on where the jump sits in its support, "
                "so some scales carry less than 2^(-j) and best N-term passes them over")
    return ("at coarse scales several jumps share one wavelet, so fewer than m coefficients per scale are nonzero, "
            "and best N-term keeps the large coefficients across scales")


def verdict(fit: dict, th: dict, m: int) -> str:
    """One sentence that says what the measured rate and the theory's say, and why they differ where they do.

    Power law (S4D, Fourier): matching when |p − p_th| ≤ :data:`POWER_TOLERANCE`. Exponential law with a bound
    c ≤ c_th (Haar: c_th = m; Mamba-Haar: 3m): "at least as fast as the bound" when c ≤ c_th, "slower, within the
    tolerance" when c_th < c ≤ :data:`EXP_TOLERANCE`·c_th, "slower than the bound" beyond.
    """
    law = th.get("law")
    if law is None:
        return "no rate is stated for this strategy"
    if law == "floor":
        return th["statement"]
    if fit.get("estimate") is None:
        return f"no fit: {fit.get('reason', 'no range')}"
    caveat = th.get("caveat")
    if law == "power":
        p, pth = fit["estimate"], th["value"]
        if abs(p - pth) <= POWER_TOLERANCE:
            return f"matches p = {pth:g} of l2_sq (p = {p:.3f}; squared norm, plain l2 ~ N^{pth / 2:g})"
        why = [caveat] if caveat else []
        if p < pth:
            why.append(f"faster than N^{pth:g} over this range (best N-term keeps the largest coefficients, or the "
                       f"range is pre-asymptotic, or aliasing as N nears L/2)")
        else:
            why.append(f"slower than N^{pth:g} over this range (the 1/n coefficients have not settled)")
        return f"differs from p = {pth:g} (p = {p:.3f}): " + "; ".join(why)
    c, cth = fit["estimate"], th["value"]
    shown = "inf" if math.isinf(c) else f"{c:.2f}"
    if c <= cth:
        reason = caveat or _haar_reason(m)
        return f"decays at least as fast as the bound 2^(-N/{cth:g}) (c = {shown} <= {cth:g}): {reason}"
    if c <= EXP_TOLERANCE * cth:
        return (f"decays slightly slower than the bound 2^(-N/{cth:g}) (c = {shown} > {cth:g}), within the "
                f"tolerance c <= {EXP_TOLERANCE:g}·{cth:g} of a fit over a short range that ends at the floor"
                + (f"; {caveat}" if caveat else ""))
    return (f"decays slower than the bound 2^(-N/{cth:g}) (c = {shown} > {EXP_TOLERANCE:g}·{cth:g}): the range "
            f"reaches the floor set by L (at most log2 L scales) and, for Mamba, by the sharpness |w| of the "
            f"Heavisides (eq. 22)" + (f"; {caveat}" if caveat else ""))
