"""Plots of the mechanistic study: Fig. 4's traces along the sequence and Fig. 7's |W_Δ| (matplotlib, Agg)."""
from __future__ import annotations

import numpy as np

from .plots import check_plot_path, plt, save_figure


def plot_trace(trace: dict, path, title: str = "", steps: int = 64):
    """Four panels over the first ``steps`` positions: y_t, h_t, Δ_t ⊙ x̂_t, e^{Λ⊙Δ_t}; dashed lines are the first
    |V| dimensions, solid the last |V| (as the study's Fig. 4), the key positions marked by vertical lines."""
    path = check_plot_path(path)
    V = trace["y"].shape[1]
    t = np.arange(min(steps, trace["y"].shape[0]))
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True, layout="constrained")
    panels = (("y", "output y_t"), ("h", "state h_t"), ("input", "input term Δ_t ⊙ x̂_t"),
              ("forget", "forgetting factor e^(Λ⊙Δ_t)"))
    for ax, (key, label) in zip(axes, panels):
        a = trace[key][t]
        for i in range(a.shape[1]):
            ax.plot(t, a[:, i], lw=0.9, ls="-" if key == "y" or i >= V else "--", color=f"C{i % V}")
        for k in trace["keys"]:
            if k < len(t):
                ax.axvline(k, color="black", lw=0.6, ls=":")
        ax.set_ylabel(label, fontsize=8)
    axes[-1].set_xlabel("position t (dotted: the key)")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_w_delta(W: np.ndarray, path, title: str = ""):
    """|W_Δ| as a heat map, rows (output channel) down, columns (x̂ entry) across."""
    path = check_plot_path(path)
    fig, ax = plt.subplots(figsize=(5.5, 4.8), layout="constrained")
    im = ax.imshow(np.abs(W), cmap="viridis")
    fig.colorbar(im, ax=ax, label="|W_Δ|")
    ax.set_xlabel("column j (x̂: previous token | current token)")
    ax.set_ylabel("row i (channel)")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
