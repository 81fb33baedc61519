"""Plots of trained and constructed models: learning curves, Fig. 1's multipliers e^{−λΔ_t} and accuracy per
position (matplotlib, Agg backend).

Each takes plain numbers (lists and dictionaries), so this module knows nothing of models or the trainer.
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import ScalarFormatter

from .plots import check_plot_path, plt, save_figure


def plot_learning_curves(curves: list, path, title: str = ""):
    """Training loss, validation loss and validation accuracy per epoch, one line per run.

    ``curves``: a list of ``{"label", "train_loss", "val_loss", "val_acc"}`` with one value per epoch (NaN after
    an early stop). Losses on a log scale. PNG or SVG by the suffix of ``path``; written atomically.
    """
    path = check_plot_path(path)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for c in curves:
        epochs = range(1, len(c["train_loss"]) + 1)
        for ax, key in zip(axes, ("train_loss", "val_loss", "val_acc")):
            ax.plot(epochs, c[key], lw=1.2, label=c["label"])
    for ax, name in zip(axes, ("training loss (epoch mean)", "validation loss", "validation accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=10)
    for ax in axes[:2]:
        ax.set_yscale("log")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].legend(loc="best", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_multipliers(summary: dict, path, title: str = ""):
    """Fig. 1: left, the distribution of e^{−λΔ_t} per sequence length T (median, 25–75% and 10–90% ranges)
    for each model side by side; right, per timestep t at the largest T (median and 10–90% band), the step n
    marked.

    ``summary``: ``{"models": {name: {T: {"quantiles": {q: value}, "per_t": {"q10", "q50", "q90"}}}}, "nth"}``.
    """
    path = check_plot_path(path)
    models = summary["models"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    colors = dict(zip(models, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    width = 0.8 / max(len(models), 1)
    lengths = sorted({T for by_T in models.values() for T in by_T})
    for k, (name, by_T) in enumerate(models.items()):
        for i, T in enumerate(lengths):
            if T not in by_T:
                continue
            q = {float(a): b for a, b in by_T[T]["quantiles"].items()}
            x = i + (k - (len(models) - 1) / 2) * width
            left.vlines(x, q[0.1], q[0.9], color=colors[name], lw=1)
            left.vlines(x, q[0.25], q[0.75], color=colors[name], lw=6, label=name if i == 0 else None)
            left.plot([x - width / 3, x + width / 3], [q[0.5]] * 2, color="black", lw=1.2)
        T = max(by_T)
        per_t = by_T[T]["per_t"]
        t = range(1, T + 1)
        right.fill_between(t, per_t["q10"], per_t["q90"], color=colors[name], alpha=0.25)
        right.plot(t, per_t["q50"], color=colors[name], lw=1.5, label=f"{name} (T = {T})")
    left.set_xticks(range(len(lengths)), [str(T) for T in lengths])
    left.set_xlabel("sequence length T")
    left.set_ylabel("e^(−λΔ_t)")
    left.set_title("distribution per T: median, 25–75% (thick), 10–90% (thin)", fontsize=9)
    left.legend(loc="best", fontsize=8)
    right.axvline(summary["nth"], color="gray", ls="--", lw=1)
    right.set_xlabel("timestep t (dashed: t = n)")
    right.set_title("per timestep: median and 10–90% band", fontsize=9)
    right.legend(loc="best", fontsize=8)
    for ax in (left, right):
        ax.set_ylim(-0.02, 1.02)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)



def plot_accuracy_per_position(per_position: dict, path, title: str = ""):
    """Accuracy at each position t = 1..T (``per_position``: ``{"correct", "scored"}`` lists, as
    :func:`ssm.evaluate.accuracy` returns them) above the number of scored positions; positions never scored are
    left out. PNG or SVG by the suffix of ``path``; written atomically."""
    path = check_plot_path(path)
    correct, scored = np.asarray(per_position["correct"], float), np.asarray(per_position["scored"], float)
    t = np.arange(1, scored.size + 1)
    some = scored > 0
    fig, (ax_a, ax_n) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True, height_ratios=(2, 1))
    ax_a.plot(t[some], correct[some] / scored[some], marker=".", lw=1.0)
    ax_a.set_ylim(-0.02, 1.02)
    ax_a.set_ylabel("accuracy at t")
    ax_a.grid(alpha=0.3)
    ax_n.bar(t[some], scored[some], width=1.0, color="grey")
    ax_n.set_xlabel("position t")
    ax_n.set_ylabel("scored")
    if title:
        ax_a.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_recall_figure(summary: list, path, title: str = ""):
    """One heat map per panel: x (κ or |V|) across, d up (log scale), colour = best accuracy over seeds, the
    theory line in black (``summary`` from :func:`ssm.training.figures.summarise`). PNG or SVG by the suffix."""
    path = check_plot_path(path)
    n = len(summary)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols + 1, 3.4 * rows), squeeze=False,
                             layout="constrained")
    for ax, s in zip(axes.ravel(), summary):
        xs = sorted({c["x"] for c in s["cells"]} | {r["x"] for r in s["per_x"]})   # columns without cells too
        pos = {x: i for i, x in enumerate(xs)}
        sc = ax.scatter([pos[c["x"]] for c in s["cells"]], [c["d"] for c in s["cells"]],
                        c=[c["best"] for c in s["cells"]], cmap="viridis", vmin=0, vmax=1, s=80, edgecolors="grey")
        for r in s["per_x"]:                                  # the theory line as a step across each column
            ax.hlines(r["theory_d"], pos[r["x"]] - 0.45, pos[r["x"]] + 0.45, color="black", lw=1.8)
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set_xlabel(s["x_name"])
        ax.set_ylabel("d")
        ax.set_title(s["panel"], fontsize=9)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.colorbar(sc, ax=axes.ravel().tolist(), label="accuracy (best over seeds)")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
