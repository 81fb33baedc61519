"""How ``approx reproduce`` prints the MQAR and INDUCTION HEADS figures: per panel, the smallest solving d beside the
theory line, how well the line separates, and the accuracy grid."""
from __future__ import annotations

from ssm.training.figures import CLAIMS, RECALL_SOLVED, delta_t_vs_mamba
from ssm.training.recipe import describe, deviation


def _share(v) -> str:
    return "—" if v is None else f"{v:.0%}"


def format_figure(what: str, summary: list, recipe, seeds: str, theory: str, score_at: str | None = None) -> str:
    """The report of one figure (``summary`` from :func:`ssm.training.figures.summarise`); ``score_at``: the
    positions the accuracies were scored at again, when not those trained on."""
    lines = [f"approx reproduce {what}: T = 100, {seeds} per cell, colour = best over seeds; solved = best ≥ "
             f"{RECALL_SOLVED}; theory line: {theory}",
             *([f"accuracy scored at the {score_at!r} positions of the test sets (trained on the task's own)"]
               if score_at else []),
             f"recipe: {describe(recipe)}", deviation(recipe) or "recipe: App. D.1 (the paper's)",
             f"paper: {CLAIMS[what]}", ""]
    for s in summary:
        xn = s["x_name"]
        lines.append(f"{s['panel']}: cells at or above the line that solve {_share(s['above_solve'])}, below it "
                     f"that fail {_share(s['below_fail'])}")
        lines.append(f"  {xn:>4}  {'theory d':>8}  {'smallest solving d':>18}")
        for r in s["per_x"]:
            smallest = "none in the grid" if r["smallest_d"] is None else str(r["smallest_d"])
            lines.append(f"  {r['x']:>4}  {r['theory_d']:>8}  {smallest:>18}")
        xs = sorted({c["x"] for c in s["cells"]})
        ds = sorted({c["d"] for c in s["cells"]}, reverse=True)
        acc = {(c["x"], c["d"]): c for c in s["cells"]}
        lines.append(f"  best (mean) accuracy, d down, {xn} across:")
        lines.append("  " + f"{'d':>5} " + "".join(f"{x:>14}" for x in xs))
        for d in ds:
            row = [f"{acc[(x, d)]['best']:.2f} ({acc[(x, d)]['mean']:.2f})" + ("*" if acc[(x, d)]["above"] else " ")
                   if (x, d) in acc else "" for x in xs]
            lines.append("  " + f"{d:>5} " + "".join(f"{v:>14}" for v in row))
        lines.append("  (* at or above the theory line)")
        lines.append("")
    for c in delta_t_vs_mamba(summary):
        lines.append(f"N = {c['n_rule']}: Mamba-Δ⊤ at least as accurate as Mamba in {c['dt_at_least']:.0%} of "
                     f"{c['cells']} cells")
    return "\n".join(lines).rstrip()
