"""``approx reproduce``: Table 1, Tables A.1–A.4 and Fig. 1 of the paper, trained, beside the paper's numbers."""
from __future__ import annotations

import time

import click

from approx.records import make_record, to_json
from ssm.models import MODELS
from ssm.training import distributed, fig1, figures
from ssm.training.recipe import describe
from ssm.training.reproduce import SOLVED, TABLES, VARIANTS, compare, select, table_runs
from ssm.training.sweep import run_sweep, stored

from .figures import format_figure
from .options import given
from .train import VariadicCommand, check_plot, make_recipe, option_errors, recipe_options, seed_list

WHAT = TABLES + ("fig1",) + tuple(figures.FIGURES)


class ReproduceCommand(VariadicCommand):
    variadic = ("--lr", "--lengths", "--models", "--d", "--n", "--x")


def _acc(a, se):
    return f"{a:.2f} ({se:.2f})"


def format_table(what: str, result: dict, recipe, seeds: int) -> str:
    """Paper beside lab for every cell, the verdicts, a summary line of agreement and the disagreements."""
    lines = [f"approx reproduce {what}: KEEP FIFTH (n = 5, |V| = 128), {seeds} seed(s) per cell; solved = test "
             f"accuracy ≥ {SOLVED}",
             f"recipe: {describe(recipe)}", result["deviation"] or "recipe: App. D.1 (the paper's)", "",
             f"{'model':<12} {'config':<10} {'T':>3}  {'params paper/lab':>17}  {'acc. paper':>11}  {'acc. lab':>11}  "
             f"{'epochs paper/lab':>16}  {'verdict paper/lab':>19}"]
    verdict = lambda s: "solved" if s else "unsolved"
    for c in result["cells"]:
        p, m = c["paper"], c["measured"]
        mark = "" if c["agree"] else "  ✗"
        verdicts = verdict(c["paper_solved"]) + " / " + verdict(c["measured_solved"])
        lines.append(f"{c['variant']:<12} {c['config']:<10} {c['T']:>3}  "
                     f"{p['params_k']:>7.1f}k / {m['parameters']:>6}  {_acc(p['accuracy'], p['se']):>11}  "
                     f"{_acc(m['accuracy'], m['se']):>11}  {p['epochs']:>7} / {m['epochs']:>6.1f}  "
                     f"{verdicts:>19}{mark}")
    share = result["agree"] / result["total"]
    lines += ["", f"agreement: {result['agree']} of {result['total']} cells ({share:.0%}) have the paper's verdict"]
    for c in result["cells"]:
        if not c["agree"]:
            lines.append(f"  ✗ {c['variant']} {c['config']} T={c['T']}: paper {c['paper']['accuracy']:.2f}, lab "
                         f"{c['measured']['accuracy']:.2f} — {c['note']}")
    return "\n".join(lines)


def format_fig1(summary: dict, recipe, seeds: int, samples: int) -> str:
    nth = summary["nth"]
    lines = [f"approx reproduce fig1: e^(−λΔ_t) on {samples} test sequences per run, d = 32, N = 8 with PE, "
             f"n = {nth}, {seeds} seed(s), values pooled over sequences, channels and states",
             f"recipe: {describe(recipe)}", "",
             f"{'model':<6} {'T':>3}  {'q10':>6} {'median':>7} {'q90':>6} {'mean':>6}  "
             f"{'≤ 0.1 for t < n':>16}  {'≥ 0.9 for t ≥ n':>16}"]
    for name, by_T in summary["models"].items():
        for T, s in by_T.items():
            q = s["quantiles"]
            lines.append(f"{name:<6} {T:>3}  {q[0.1]:>6.3f} {q[0.5]:>7.3f} {q[0.9]:>6.3f} {s['mean']:>6.3f}  "
                         f"{s['zero_before_n']:>16.3f}  {s['one_from_n']:>16.3f}")
    lines += ["", "Paper (Fig. 1): for Mamba e^(−λΔ_t) is mostly 0 before t = n and mostly 1 from n on; "
                  "S4D's e^(Λ) is the same at every step."]
    return "\n".join(lines)


@click.command("reproduce", cls=ReproduceCommand,
               short_help="Tables 1, A.1–A.4 and Figs. 1, 2, 3, A.2–A.4 trained, beside the paper's numbers.")
@click.argument("what", type=click.Choice(WHAT), metavar="WHAT")
@click.option("--lengths", type=int, multiple=True, help="Only these sequence lengths T (several after one flag).")
@click.option("--models", type=click.Choice(sorted(set(VARIANTS) | set(MODELS))), multiple=True,
              help="Only these rows (tables) or models (figures); several after one flag.")
@click.option("--x", "xs", type=int, multiple=True, help="Figures: only these κ (MQAR) or |V| (INDUCTION HEADS).")
@click.option("--theory", type=click.Choice(figures.THEORIES), default="lem4", show_default=True,
              help="Figures: the theory line, Lem. 4's compressed sizes (lem4) or the uncompressed ones (step1).")
@click.option("--d", "d", type=int, multiple=True, help="Only these embedding sizes d.")
@click.option("--n", "N", type=int, multiple=True, help="Only these state sizes N.")
@click.option("--stored", "stored_only", is_flag=True, default=False,
              help="Train nothing: report the cells whose every run the store already holds (the others are "
                   "counted and left out).")
@click.option("--score-at", type=click.Choice(["all", "repeat", "hard"]), default=None,
              help="INDUCTION HEADS figures: score the trained models again at these positions of their test sets "
                   "(hard: the hard setting's T − r only), beside the positions they were trained on.")
@click.option("--samples", type=int, default=None,
              help="Test sequences per run: fig1's e^(−λΔ_t) (default 200), --score-at (default the test set's size).")
@recipe_options("budget")
@option_errors
def reproduce(what, lengths, models, xs, theory, d, N, stored_only, score_at, samples, recipe_name, epochs,
              batch_size, lr, lr_min, schedule, train_size, val_size, test_size, stop_loss, data_seed, patience, min_gain, seeds, seed,
              device, store, no_store, checkpoint_every, concurrent, progress, as_json, plot):
    """Train the runs of WHAT (table1, table-a1 … table-a4, fig1, and the MQAR / INDUCTION HEADS figures fig2,
    figa2, figa3, fig3, figa4) and print the paper's number beside the measured one in every cell, Fig. 1's
    distribution of e^(−λΔ_t), or a figure's smallest solving d beside its theory line.

    The default recipe is the budget one (50 epochs of 10⁴ sequences at lr 0.01, 10⁴ test sequences; App. D.1's
    full recipe is --recipe paper, ~3.75·10⁶ steps per run); the report says how the recipe used differs from the
    paper's; the figures add a plateau stop (--patience 10). Finished runs are read from the store, so a second
    call resumes. Under torchrun the runs are sharded over the processes.

    Example: approx reproduce table-a1 --lengths 10 --d 8 32 --seeds 3
    """
    if plot is not None and what in TABLES:
        raise ValueError("--plot applies to the figures only")
    check_plot(plot)
    start = time.perf_counter()
    recipe, lrs = make_recipe(recipe_name, epochs=epochs, batch_size=batch_size, lr=lr, lr_min=lr_min,
                              schedule=schedule, train_size=train_size, val_size=val_size, test_size=test_size,
                              stop_loss=stop_loss, data_seed=data_seed, patience=patience, min_gain=min_gain)
    if what in figures.FIGURES and patience is None:
        recipe = recipe.replace(patience=figures.PATIENCE)
    if len(lrs) > 1:
        raise ValueError("--lr takes one value in reproduce (each cell is the paper's single learning rate)")
    seeds_ = seed_list(seeds, seed)
    if stored_only and (no_store or what == "fig1"):
        raise ValueError("--stored reads the store of a table or figure: it needs --store, not fig1 or --no-store")
    if what in figures.FIGURES:
        _figure(what, models, xs, theory, d, N, lengths, recipe, seeds_ if given(click.get_current_context(), "seeds")
                else None, seed, device=device, store=None if no_store else store, checkpoint_every=checkpoint_every,
                concurrent=concurrent, progress=progress, as_json=as_json, plot=plot, start=start,
                stored_only=stored_only, score_at=score_at, samples=samples)
        return
    if xs or score_at or given(click.get_current_context(), "theory"):
        raise ValueError("--x, --theory and --score-at apply to the figures fig2, figa2, figa3, fig3, figa4")
    if what == "fig1":
        if models or N:
            raise ValueError("fig1 takes --lengths and --d only (its models are Mamba+PE and S4D+PE, N = 8)")
        if len(d) > 1:
            raise ValueError("fig1 takes one --d")
        runs = fig1.fig1_runs(recipe, list(lengths) or [10, 20, 30, 40, 50], seeds_, d=d[0] if d else 32)
    else:
        cells = select(what, lengths=list(lengths), variants=list(models), d=list(d), N=list(N))
        asked = len(cells)
        if stored_only:
            cells = [c for c in cells if all(stored(table_runs([c], recipe, seeds_), store))]
            if not cells:
                raise ValueError(f"the store {store!r} holds no complete cell of {what} for this recipe and seeds")
        runs = table_runs(cells, recipe, seeds_)
    results = run_sweep(runs, store=None if no_store else store, device=device, checkpoint_every=checkpoint_every,
                        concurrent=concurrent, progress=progress)
    if not distributed.is_main():
        return
    if what == "fig1":
        samples = 200 if samples is None else samples
        summary = fig1.summarise(runs, results, samples=samples)
        if plot is not None:
            from approx.plots_training import plot_multipliers
            plot_multipliers(summary, plot,
                             title="Fig. 1: e^(−λΔ_t) of Mamba+PE and S4D+PE on KEEP FIFTH test inputs")
        text, metrics = format_fig1(summary, recipe, len(seeds_), samples), {"fig1": summary}
    else:
        result = compare(what, cells, results, recipe)
        text, metrics = format_table(what, result, recipe, len(seeds_)), {
            "cells": result["cells"], "agree": result["agree"], "total": result["total"]}
        if stored_only:
            text += f"\n--stored: {len(cells)} of the {asked} cells asked for are in the store; the others are left out"
            metrics["cells_asked"] = asked
    config = {"kind": "reproduce", "what": what, "recipe": recipe.to_dict(), "seeds": seeds_,
              "runs": [res["record"]["key"] for res in results]}
    record = make_record(config, metrics, seed=seeds_, device=distributed.device(device),
                         wall_s=time.perf_counter() - start, recipe_deviation=results[0]["record"]["recipe_deviation"])
    click.echo(to_json(record) if as_json else text)


def _figure(what, models, xs, theory, d, N, lengths, recipe, seeds, first_seed, *, device, store, checkpoint_every,
            concurrent, progress, as_json, plot, start, stored_only, score_at, samples):
    """Train (or read back) the cells of one MQAR / INDUCTION HEADS figure and print its report."""
    if N or lengths:
        raise ValueError("the figures set N by their rule and T = 100: --n and --lengths do not apply")
    chosen = figures.panels(what, models=list(models), xs=list(xs))
    if score_at and any(p.task != "induction" for p in chosen):
        raise ValueError("--score-at applies to the INDUCTION HEADS figures fig3 and figa4")
    cells = figures.figure_runs(chosen, recipe, seeds=seeds, d=list(d))
    if not cells:
        raise ValueError("no cell of the figure matches --d")
    if stored_only:
        have = stored([c[3] for c in cells], store)
        complete = {}
        for c, h in zip(cells, have):
            key = (c[0], c[1], c[2])
            complete[key] = complete.get(key, True) and h
        cells = [c for c in cells if complete[(c[0], c[1], c[2])]]
        if not cells:
            raise ValueError(f"the store {store!r} holds no complete cell of {what} for this recipe and seeds")
    results = run_sweep([c[3] for c in cells], store=store, device=device, checkpoint_every=checkpoint_every,
                        concurrent=concurrent, progress=progress)
    if not distributed.is_main():
        return
    if score_at is not None:
        results = figures.rescore(cells, results, score_at, samples=samples, device=distributed.device(device))
    summary = figures.summarise(cells, results, theory)
    per_cell = "seeds " + ", ".join(map(str, seeds)) if seeds else "best of 7 (MQAR) / 5 (INDUCTION HEADS) seeds"
    if plot is not None:
        from approx.plots_training import plot_recall_figure
        plot_recall_figure(summary, plot, title=f"{what}: best accuracy over seeds, theory line ({theory}) in black")
    config = {"kind": "reproduce", "what": what, "recipe": recipe.to_dict(), "theory": theory,
              "score_at": score_at,
              "seeds": seeds or "per panel", "runs": [res["record"]["key"] for res in results]}
    record = make_record(config, {"panels": summary}, seed=seeds or first_seed, device=distributed.device(device),
                         wall_s=time.perf_counter() - start, recipe_deviation=results[0]["record"]["recipe_deviation"])
    click.echo(to_json(record) if as_json else format_figure(what, summary, recipe, per_cell, theory, score_at))
