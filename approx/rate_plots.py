"""The rate plot of a sweep (Cor. 1): ``l2_sq`` against N with the fitted rates and the theoretical ones.

Three panels: S4D and Fourier on log-log axes (a power law is a line; theory slope −1), the ideal Haar references
and the Mamba bases on semilog-2 axes (2^(−N/c) is a line; theory c = m for Haar, 3m for Mamba-Haar). One colour per
m; the curve is the geometric mean of ``l2_sq`` over trials, the band the 10–90 % range over trials, the solid
line the fit over its range (stated in the legend) and the dotted line the theory, anchored at the fit's first N.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import registry  # noqa: E402
from .plots import check_plot_path, save_figure  # noqa: E402

TITLES = ("S4D and Fourier (log-log): theory l2_sq ~ N^-1",
          "Haar, ideal (semilog-2): theory l2_sq <= 2^(-N/m)",
          "Mamba (semilog-2): theory l2_sq <= 2^(-N/3m), Heavisides exact at N = m+1")


def _label(u) -> str:
    f = u["fit"]
    text = f"m={u['m']} {registry.get(u['basis'], u['strategy']).label}"
    if f.get("estimate") is not None:
        est = f["estimate"]
        lo, hi = f["ci"]
        fmt = (lambda v: "inf" if math.isinf(v) else f"{v:.2f}")
        text += f": {f['name']}={fmt(est)} [{fmt(lo)}, {fmt(hi)}], N {f['n_range'][0]}-{f['n_range'][1]}"
    elif u["theory"]["law"] == "floor" and u.get("floor_n"):
        text += f": floor from N={u['floor_n']}"
    return text


def plot_rates(sweep, path) -> Path:
    """Write the rate plot of a :class:`approx.rates.RateSweep` to ``path`` (.png or .svg), atomically."""
    path = check_plot_path(path)
    ms = list(dict.fromkeys(u["m"] for u in sweep.units))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(ms)}
    fig, axes = plt.subplots(1, 3, figsize=(21, 7))
    cfg = sweep.config
    for panel, (ax, title) in enumerate(zip(axes, TITLES)):
        units = [u for u in sweep.units if registry.get(u["basis"], u["strategy"]).panel == panel]
        log_x = panel == 0
        for u in units:
            mean = np.asarray(u["summary"]["geomean"], dtype=float)
            lo = np.asarray(u["summary"]["p10"], dtype=float)
            hi = np.asarray(u["summary"]["p90"], dtype=float)
            n = np.arange(1, len(mean) + 1)
            ok = ~np.isnan(mean)
            marker, ls = registry.get(u["basis"], u["strategy"]).style
            col = colours[u["m"]]
            ax.plot(n[ok], mean[ok], marker=marker or None, ls=ls or "none", ms=4, lw=1.2, color=col,
                    label=_label(u))
            if ok.sum() > 1:
                ax.fill_between(n[ok], lo[ok], hi[ok], color=col, alpha=0.08, lw=0)
            f = u["fit"]
            if f.get("estimate") is not None:
                a, b = f["n_range"]
                nn = np.linspace(a, b, 50)
                xs = np.log2(nn) if f["law"] == "power" else nn
                ax.plot(nn, np.exp2(f["log2_a"] + f["slope"] * xs), color=col, lw=3, alpha=0.35)
                th = u["theory"]
                y0 = f["log2_a"] + f["slope"] * (math.log2(a) if f["law"] == "power" else a)
                slope_th = th["value"] if th["law"] == "power" else -1.0 / th["value"] if th["value"] else None
                if slope_th is not None:
                    xt = (np.log2(nn) - math.log2(a)) if th["law"] == "power" else nn - a
                    ax.plot(nn, np.exp2(y0 + slope_th * xt), color=col, lw=1, ls=":")
            if u["theory"]["law"] == "floor":
                ax.axvline(u["m"] + 1, color=col, lw=0.8, ls="-.", alpha=0.6)
        ax.set_yscale("log", base=10 if log_x else 2)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xlabel("N (number of real basis functions)")
        ax.set_ylabel(f"l2_sq = ||rho - fit||^2 (geometric mean over {cfg['trials']} trials; band 10-90 %)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.25)
        if units:
            ax.legend(fontsize=6.5, loc="lower left", title="thick: fit over its N range; dotted: theory",
                      title_fontsize=7)
        else:
            ax.text(0.5, 0.5, "no units of this kind in the sweep", ha="center", transform=ax.transAxes)
    fig.suptitle(f"Cor. 1 rates on piecewise-constant signals with m jumps: L = {cfg['samples']}, "
                 f"{cfg['trials']} trials, seed {cfg['seed']}, Mamba sharpness {cfg['sharpness']}", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path, dpi=130)
