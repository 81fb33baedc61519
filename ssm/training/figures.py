"""The size-threshold figures of MQAR (Figs. 2, A.2, A.3) and INDUCTION HEADS (Figs. 3, A.4) as sweeps.

A figure is a list of :class:`Panel`: one model at one setting, its cells (x, d) with x = κ (MQAR) or |V|
(INDUCTION HEADS) and d from the panel's grid, each cell ``seeds`` runs (best of 7 for MQAR, of 5 for INDUCTION
HEADS, as the paper reports). T = 100 everywhere. The state size N of a cell follows the figure's rule (Fig. 2:
S4D N = 4, Mamba N = 2κ, Mamba-2 N = ⌈8 ln κ⌉; Fig. 3: N = 4|V|).

Theory lines (the paper does not give the constants it drew): ``"lem4"`` (the default) is the size of the
compressed constructions of Thms. 2-4 with Lem. 4's p = ⌈(4/ε²) ln(n/δ)⌉ at ε = δ = ½ (Mamba d = κ + p(|V|),
Mamba-2 d = p(κ) + p(|V|), Mamba-S4D d = κ·p(|V| + 1)); ``"step1"`` the uncompressed ones (κ + |V|, κ + |V|,
κ·|V|); INDUCTION HEADS has Lem. 3's d = 2|V| under both.

Recipe: ``approx reproduce``'s budget one with a plateau stop, :data:`PATIENCE` epochs without a validation-accuracy
gain of 0.01 (the cells below a theory line never solve, and they are most of a figure's cost), stated in every
record; ``--patience 0`` turns it off.

The d-grids are the lab's (the paper's are lost in its text): each brackets the Mamba and Mamba-2 lines of every κ
and the INDUCTION HEADS line of every |V| by at least two grid points on each side; the S4D lines (κ·p, 356 at
κ = 4, |V| = 128) are bracketed at κ = 4 and 8 only, since κ·p reaches 2 848-3 552 at κ = 32.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from signals.checks import check_int
from signals.tasks import InductionConfig, MQARConfig

from ..constructions.mqar import jl_dim
from ..evaluate import evaluate_trained
from ..models import make_model_config, task_defaults
from .runs import Run, trained_model

RECALL_SOLVED = 0.99
PATIENCE = 10
THEORIES = ("lem4", "step1")
KAPPAS = (4, 8, 16, 32)
INDUCTION_VOCABS = (5, 10, 20, 40)
GRIDS = {"mamba": (4, 8, 16, 32, 64, 96, 128, 160, 192, 256), "mamba2": (4, 8, 16, 32, 64, 96, 128, 192, 256, 320),
         "mamba-s4d": (32, 64, 128, 256, 512, 1024, 2048), "induction": (4, 8, 16, 24, 32, 48, 64, 96, 128, 160)}

#: state-size rules: name → N as a function of x (κ or |V|); ln is the natural log, rounded up
N_RULES = {"4": lambda x: 4, "1": lambda x: 1, "2": lambda x: 2, "8": lambda x: 8,
           "κ/2": lambda x: max(1, x // 2), "κ": lambda x: x, "2κ": lambda x: 2 * x, "4κ": lambda x: 4 * x,
           "ln κ": lambda x: math.ceil(math.log(x)), "2 ln κ": lambda x: math.ceil(2 * math.log(x)),
           "4 ln κ": lambda x: math.ceil(4 * math.log(x)), "8 ln κ": lambda x: math.ceil(8 * math.log(x)),
           "|V|": lambda x: x, "2|V|": lambda x: 2 * x, "4|V|": lambda x: 4 * x}


def theory_d(model: str, task: str, x: int, vocab: int | None, rule: str = "lem4") -> int:
    """The theory line's d at x (κ for MQAR with |V| = ``vocab``, |V| for INDUCTION HEADS); see the module
    docstring."""
    if rule not in THEORIES:
        raise ValueError(f"theory must be one of {', '.join(THEORIES)}, got {rule!r}")
    if task == "induction":
        return 2 * x
    p = jl_dim
    if model == "mamba":
        return x + (p(vocab) if rule == "lem4" else vocab)
    if model == "mamba2":
        return p(x) + p(vocab) if rule == "lem4" else x + vocab
    return x * (p(vocab + 1) if rule == "lem4" else vocab)


@dataclass(frozen=True)
class Panel:
    """One panel: ``model`` on ``task`` over x ∈ ``xs`` and d ∈ ``grid``, N by ``n_rule``, ``seeds`` seeds;
    ``vocab`` is MQAR's |V| (INDUCTION HEADS takes |V| = x)."""

    figure: str
    model: str
    task: str
    xs: tuple
    grid: tuple
    n_rule: str
    seeds: int
    vocab: int | None = None

    @property
    def title(self) -> str:
        name = {"mamba": "Mamba", "mamba2": "Mamba-2", "mamba-s4d": "S4D", "mamba-dt": "Mamba-Δ⊤"}[self.model]
        v = f"|V| = {self.vocab}, " if self.vocab else ""
        return f"{name}, {v}N = {self.n_rule}"

    @property
    def x_name(self) -> str:
        return "κ" if self.task == "mqar" else "|V|"

    def N(self, x: int) -> int:
        return N_RULES[self.n_rule](x)

    def task_config(self, x: int):
        if self.task == "mqar":
            return MQARConfig(length=100, kappa=x, vocab=self.vocab)
        return InductionConfig(length=100, vocab=x, hard_prob=0.75, gamma=0.1)

    def model_config(self, x: int, d: int):
        return make_model_config(self.model, d=d, N=self.N(x), **task_defaults(self.task, self.model))

    def theory(self, x: int, rule: str = "lem4") -> int:
        return theory_d(self.model, self.task, x, self.vocab, rule)


def _mqar(figure, vocab, rules):
    return [Panel(figure, m, "mqar", KAPPAS, GRIDS[m], rules[m], 7, vocab) for m in ("mamba-s4d", "mamba", "mamba2")]


def _figa3():
    out = [Panel("figa3", "mamba-s4d", "mqar", KAPPAS, GRIDS["mamba-s4d"], r, 7, 256) for r in ("1", "2", "4", "8")]
    out += [Panel("figa3", "mamba", "mqar", KAPPAS, GRIDS["mamba"], r, 7, 512) for r in ("κ/2", "κ", "2κ", "4κ")]
    out += [Panel("figa3", "mamba2", "mqar", KAPPAS, GRIDS["mamba2"], r, 7, 512)
            for r in ("ln κ", "2 ln κ", "4 ln κ", "8 ln κ")]
    return out


def _induction(figure, rules):
    return [Panel(figure, m, "induction", INDUCTION_VOCABS, GRIDS["induction"], r, 5) for r in rules
            for m in ("mamba", "mamba-dt")]


FIG2_N = {"mamba-s4d": "4", "mamba": "2κ", "mamba2": "8 ln κ"}
#: figure → its panels
FIGURES = {"fig2": _mqar("fig2", 128, FIG2_N),
           "figa2": _mqar("figa2", 256, FIG2_N) + _mqar("figa2", 512, FIG2_N),
           "figa3": _figa3(),
           "fig3": _induction("fig3", ("4|V|",)),
           "figa4": _induction("figa4", ("|V|", "2|V|", "4|V|"))}

#: what the paper says each figure shows (its captions and App. D.3-D.4), to print beside the measurement
CLAIMS = {
    "fig2": "the theory lines separate the sizes that reach 100% (above) from those that do not (below); Mamba-2 "
            "is more size-efficient than Mamba, Mamba more than S4D",
    "figa2": "the bounds stay reasonably tight at |V| = 256, 512; S4D fails at the sizes considered; Mamba-2 "
             "solves κ = 4 below its line",
    "figa3": "N barely matters for S4D; Mamba fails for N < κ; Mamba-2 fails for N < 4 ln κ",
    "fig3": "Mamba-Δ⊤ is equal to or better than Mamba in every cell and reaches 100% only above d = 2|V|",
    "figa4": "as Fig. 3 at N = |V|, 2|V|, 4|V|",
}


def panels(figure: str, *, models=None, xs=None) -> list:
    """The panels of ``figure``, restricted to ``models`` and to the x values ``xs``."""
    if figure not in FIGURES:
        raise ValueError(f"figure must be one of {', '.join(FIGURES)}, got {figure!r}")
    out = []
    for p in FIGURES[figure]:
        if models and p.model not in models:
            continue
        keep = tuple(x for x in p.xs if not xs or x in xs)
        if keep:
            out.append(Panel(p.figure, p.model, p.task, keep, p.grid, p.n_rule, p.seeds, p.vocab))
    if not out:
        raise ValueError(f"no panel of {figure} matches the selection")
    return out


def figure_runs(chosen, recipe, *, seeds=None, d=None) -> list:
    """``[(panel, x, d, Run)]``: every cell's runs (seeds 0..panel.seeds − 1 unless ``seeds``), d in ``d`` only
    when given."""
    out = []
    for p in chosen:
        for x in p.xs:
            for dd in p.grid:
                if d and dd not in d:
                    continue
                for s in (seeds if seeds is not None else range(p.seeds)):
                    out.append((p, x, dd, Run(p.task_config(x), p.model_config(x, dd), recipe, s)))
    return out


def summarise(cells, results, theory: str = "lem4") -> list:
    """Per panel: the best-of-seeds and mean accuracy of every cell, the smallest solving d per x (best ≥
    :data:`RECALL_SOLVED`), the theory line, and how well it separates: the share of cells above (d ≥ line) that
    solve and of cells below that fail. ``cells`` and ``results`` in :func:`figure_runs` order."""
    by_panel = {}
    for (p, x, dd, _), res in zip(cells, results):
        acc = res["record"]["metrics"]["accuracy"]
        by_panel.setdefault(p, {}).setdefault((x, dd), []).append(acc)
    out = []
    for p, grid in by_panel.items():
        cells_out = [{"x": x, "d": dd, "N": p.N(x), "best": max(a), "mean": sum(a) / len(a), "seeds": len(a),
                      "above": dd >= p.theory(x, theory)} for (x, dd), a in sorted(grid.items())]
        per_x = []
        for x in p.xs:
            solving = [c["d"] for c in cells_out if c["x"] == x and c["best"] >= RECALL_SOLVED]
            per_x.append({"x": x, "smallest_d": min(solving) if solving else None, "theory_d": p.theory(x, theory)})
        above = [c for c in cells_out if c["above"]]
        below = [c for c in cells_out if not c["above"]]
        out.append({"panel": p.title, "model": p.model, "task": p.task, "n_rule": p.n_rule, "vocab": p.vocab,
                    "x_name": p.x_name, "cells": cells_out,
                    "per_x": per_x,
                    "above_solve": sum(c["best"] >= RECALL_SOLVED for c in above) / len(above) if above else None,
                    "below_fail": sum(c["best"] < RECALL_SOLVED for c in below) / len(below) if below else None})
    return out


def delta_t_vs_mamba(summary: list) -> list:
    """Fig. 3's comparison: for each N rule with both a Mamba and a Mamba-Δ⊤ panel, the cells of both and the share
    where Mamba-Δ⊤'s best accuracy is at least Mamba's."""
    out = []
    for rule in dict.fromkeys(s["n_rule"] for s in summary if s["task"] == "induction"):
        pair = {s["model"]: {(c["x"], c["d"]): c["best"] for c in s["cells"]} for s in summary
                if s["task"] == "induction" and s["n_rule"] == rule}
        if {"mamba", "mamba-dt"} <= set(pair):
            both = set(pair["mamba"]) & set(pair["mamba-dt"])
            if both:
                at_least = sum(pair["mamba-dt"][k] >= pair["mamba"][k] for k in both)
                out.append({"n_rule": rule, "cells": len(both), "dt_at_least": at_least / len(both)})
    return out


def rescore(cells, results, positions: str, *, samples: int | None = None, device="cpu") -> list:
    """The INDUCTION HEADS ``results`` (:func:`figure_runs` order) scored again at ``positions`` (``"all"``,
    ``"repeat"``, ``"hard"``) on each run's own test set (``samples`` sequences drawn from its seed; default the
    recipe's test size: the very test set), the trained weights read back from the store: a copy of
    each result whose ``record.metrics.accuracy`` is the new one (``trained_accuracy`` keeps the old). The models
    are trained on the positions of their task; this measures them elsewhere, e.g. at the hard setting's T − r."""
    if samples is not None:
        check_int("samples", samples)
    out = []
    for (p, _, _, run), res in zip(cells, results):
        if p.task != "induction":
            raise ValueError(f"rescoring at other positions applies to the INDUCTION HEADS figures, not to "
                             f"{p.figure}'s MQAR panels")
        task = dataclasses.replace(run.task, positions=positions)
        batch = task.generate(samples or run.recipe.test_size, run.recipe.data_seeds()["test"], device)
        model, params = trained_model(run, res["arrays"], device=device)
        scored = evaluate_trained((run, model, params), batch, device=device)["metrics"]["accuracy"]
        record = dict(res["record"], metrics=dict(res["record"]["metrics"], accuracy=scored,
                                                  trained_accuracy=res["record"]["metrics"]["accuracy"]))
        out.append(dict(res, record=record))
    return out
