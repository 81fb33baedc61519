"""Plots of the lab: where every figure is checked and written (:func:`check_plot_path`, :func:`save_figure`), and
the fit plot — the signal, its fit and the basis functions used, in one figure (matplotlib, Agg backend)."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from signals.grid import midpoints  # noqa: E402
from .records import atomic_write, check_output_path  # noqa: E402

FORMATS = {".png": "png", ".svg": "svg"}
MAX_BASIS_LINES = 10


def check_plot_path(path, name: str = "plot") -> Path:
    """The plot's path, checked before anything is computed: it ends in .png or .svg, its folder exists and is
    writable (no folder is created), it is not a folder. Raises ValueError naming ``name`` and the path."""
    return check_output_path(name, path, tuple(FORMATS))


def save_figure(fig, path, *, dpi: int = 120) -> Path:
    """Write a matplotlib figure to ``path`` (PNG or SVG by its suffix) atomically, with the permissions of any
    file the user writes, and close it."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=FORMATS[path.suffix.lower()], dpi=dpi)
    plt.close(fig)
    return atomic_write(path, buf.getvalue(), mode="wb")


def plot_fit(result, path) -> Path:
    """Write the signal, the fit and (up to 10 of) the SSM basis functions of a :class:`approx.fitting.FitResult`.

    Top panel: signal and fit with the error in the title. Bottom panel: the basis functions, one per row, each
    scaled to a maximum |value| of 1. PNG or SVG by the suffix of ``path``; written atomically.
    """
    path = check_plot_path(path)
    x, fit = result.x.detach().cpu(), result.fit.detach().cpu()
    s = midpoints(x.shape[-1])
    cfg, met = result.config, result.metrics
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True, height_ratios=(1, 1))
    top.plot(s, x, color="black", lw=1.2, label="signal")
    top.plot(s, fit, color="tab:red", lw=1.0, ls="--", label="fit")
    top.set_title(f"{cfg['basis']}/{cfg['strategy']} on {cfg['signal']} (L = {cfg['samples']}): "
                  f"N used = {met['n_used']}, l2_sq = {met['l2_sq']:.3e}, l2 = {met['l2']:.3e}", fontsize=10)
    top.legend(loc="best", fontsize=8)
    top.set_ylabel("value")
    G = result.ssm_basis.detach().cpu()
    shown = min(G.shape[-1], MAX_BASIS_LINES)
    heavisides = cfg["basis"] == "mamba" and cfg["strategy"] == "haar"
    names = [f"H(s − {t:.4g})" for t in result.params.get("heavisides", [])] if heavisides else result.labels
    for q in range(shown):
        g = G[:, q]
        peak = float(g.abs().max()) or 1.0
        bottom.plot(s, shown - 1 - q + 0.42 * g / peak, lw=0.9)
    names = [names[q] if q < len(names) else f"g{q + 1}" for q in range(shown)]
    bottom.set_yticks(range(shown), names[::-1], fontsize=7)
    more = f" (first {shown} of {G.shape[-1]})" if G.shape[-1] > shown else ""
    bottom.set_title(f"basis functions used, one per row, each scaled to max |g| = 1{more}", fontsize=9)
    bottom.set_xlabel("s")
    fig.tight_layout()
    return save_figure(fig, path)
