"""The sensitivity plot (Sec. 4.2): heat map over (t, j), decay curves with theory lines, histograms of e^{−λΔ_t}.

Takes the ``series`` of an experiment of :mod:`ssm.sensitivity` (plain NumPy arrays, no labels), so this module
does not import the models; :data:`PANELS` turns each experiment's series into what is drawn and how it is
labelled:

- ``heat`` (L, L): |∂h_t/∂x_j| (or a norm of it) with t on rows, j on columns;
- ``curves``: ``{"label", "x", "y"}`` with optional ``"theory"`` (drawn dashed in the same colour, labelled
  ``"theory_label"``) and ``"style": "bound"`` (a dotted line);
- ``hist``: ``{label: values}``, overlaid histograms on [0, 1] (the e^{−λΔ_t} of Fig. 1).

Log scales show the top ``DECADES`` decades: sensitivities decay exponentially and would otherwise be drawn down
to float64 underflow.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from .plots import FORMATS, check_plot_path  # noqa: E402
from .records import atomic_write  # noqa: E402

DECADES = 30


def _decay(s: dict) -> dict:
    return {"heat_label": "‖∂h_t/∂x_j‖",
            "curves": [{"label": f"d={c['d']}, n={c['n']}", "x": s["steps"], "y": c["sensitivity"],
                        "theory": c["lemma1"], "theory_label": f"Lemma 1 (37), d={c['d']}, n={c['n']}"}
                       for c in s["states"]],
            "curve_xlabel": "t − j", "curve_ylabel": f"‖∂h_t/∂x_j‖, j = {s['j']}",
            "hist": {"exp(−λΔ_t)": s["multipliers"]}}


def _lemma2(s: dict) -> dict:
    steps = s["steps"]
    return {"heat_label": "|∂h_t[0]/∂ξ_j|",
            "curves": [{"label": f"{s['layer']}, Δ→0 after j", "x": steps, "y": s["selective"]},
                       {"label": "S4D, same λ", "x": steps, "y": s["s4d"], "theory": s["s4d_lemma1"],
                        "theory_label": "S4D, e^(−λ(t−j))"},
                       {"label": "exp(−c)·|∂(BΔx)/∂x_j|, bound (13)", "x": steps,
                        "y": np.full(len(steps), s["bound"]), "style": "bound"}],
            "curve_xlabel": "t − j", "curve_ylabel": f"|∂h_t/∂ξ_j|, j = {s['j']}",
            "hist": {"exp(−λΔ_t), t ≤ j": s["multipliers_to_j"], "exp(−λΔ_t), t > j": s["multipliers_after_j"]}}


def _forgetting(s: dict) -> dict:
    return {"heat_label": "‖∂h_t/∂x_j‖ (token channels)",
            "curves": [{"label": "S6, KEEP n-TH (Cor. 2)", "x": s["positions"], "y": s["selective"]},
                       {"label": f"S4D, λ = {s['s4d_lambda']:.3g}", "x": s["positions"], "y": s["s4d"]}],
            "curve_xlabel": "j", "curve_ylabel": "‖∂h_T/∂x_j‖",
            "hist": {"exp(−λΔ_t), t ≤ n": s["multipliers_to_n"], "exp(−λΔ_t), t > n": s["multipliers_after_n"]}}


def _attention(s: dict) -> dict:
    return {"heat_label": "‖∂y_t/∂x_j‖",
            "curves": [{"label": "softmax attention", "x": s["t"], "y": s["sensitivity"], "theory": s["bound"],
                        "theory_label": "bound (45)"}],
            "curve_xlabel": "t", "curve_ylabel": f"‖∂y_t/∂x_j‖, j = {s['j']}", "curve_xscale": "log",
            "hist": {"attention weights a_tj": s["weights"]}}


#: What each experiment's series draw, with their labels.
PANELS = {"decay": _decay, "lemma2": _lemma2, "forgetting": _forgetting, "attention": _attention}


def plot_sensitivity(series: dict, path, title: str = ""):
    """Write the three panels of one sensitivity experiment's ``series`` to ``path`` (PNG or SVG by suffix,
    atomically)."""
    path = check_plot_path(path)
    plot = PANELS[series["experiment"]](series)
    fig, (ax_h, ax_c, ax_d) = plt.subplots(1, 3, figsize=(16, 4.8))
    heat = np.asarray(series["heat"], dtype=float)
    with np.errstate(divide="ignore"):
        logh = np.where(heat > 0, np.log10(np.where(heat > 0, heat, 1.0)), np.nan)
    L = heat.shape[0]
    finite = np.isfinite(logh).any()
    top = np.nanmax(logh) if finite else 0.0
    bottom = max(top - DECADES, np.nanmin(logh)) if finite else -1.0
    im = ax_h.imshow(logh, origin="lower", aspect="auto", cmap="viridis", extent=(0.5, L + 0.5, 0.5, L + 0.5),
                     vmin=min(bottom, top - 1e-9), vmax=top)
    fig.colorbar(im, ax=ax_h, label=f"log10 {plot.get('heat_label', 'sensitivity')}")
    ax_h.set_xlabel("j (input position)")
    ax_h.set_ylabel("t (state position)")
    ax_h.set_title(f"sensitivity over (t, j), top {DECADES} decades; blank: exactly 0 (t < j, or underflow)",
                   fontsize=9)

    peak, low = 0.0, np.inf
    for k, c in enumerate(plot.get("curves", [])):
        x, y = np.asarray(c["x"], dtype=float), np.asarray(c["y"], dtype=float)
        color = f"C{k}"
        if c.get("style") == "bound":
            ax_c.plot(x, y, color="black", ls=":", lw=1.2, label=c["label"])
            continue
        pos = y > 0
        if pos.any():
            peak, low = max(peak, float(y[pos].max())), min(low, float(y[pos].min()))
        ax_c.plot(x[pos], y[pos], color=color, lw=1.3, label=c["label"])
        if "theory" in c:
            th = np.asarray(c["theory"], dtype=float)
            ok = th > 0
            ax_c.plot(x[ok], th[ok], color=color, ls="--", lw=1.0,
                      label=c.get("theory_label", f"theory, {c['label']}"))
    ax_c.set_yscale("log")
    if peak > 0:
        ax_c.set_ylim(bottom=max(peak * 10.0 ** -DECADES, low / 10), top=peak * 10)
    if plot.get("curve_xscale") == "log":
        ax_c.set_xscale("log")
        ax_c.xaxis.set_minor_formatter(NullFormatter())
    ax_c.set_xlabel(plot.get("curve_xlabel", "t − j"))
    ax_c.set_ylabel(plot.get("curve_ylabel", "sensitivity"))
    dashed = any("theory" in c for c in plot.get("curves", []))
    ax_c.set_title("decay (solid: autograd" + (", dashed: theory)" if dashed else ")"), fontsize=9)
    ax_c.legend(fontsize=7, loc="best")

    bins = np.linspace(0.0, 1.0, 41)
    for label, values in plot.get("hist", {}).items():
        v = np.clip(np.asarray(values, dtype=float).ravel(), 0.0, 1.0)
        ax_d.hist(v, bins=bins, alpha=0.6, label=f"{label} ({v.size})")
    ax_d.set_xlabel("value")
    ax_d.set_ylabel("count")
    ax_d.set_title("histogram", fontsize=9)
    ax_d.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=FORMATS[path.suffix.lower()], dpi=110)
    plt.close(fig)
    return atomic_write(path, buf.getvalue(), mode="wb")
