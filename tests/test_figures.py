"""The MQAR and INDUCTION HEADS figures as sweeps: theory lines, N rules, grids that bracket the lines, the
summary of a figure, and the command line."""
import json
import math

import pytest

from approx.plots_training import plot_recall_figure
from conftest import run_cli as run
from ssm.constructions.mqar import jl_dim
from ssm.training import figures
from ssm.training.recipe import Recipe

pytestmark = pytest.mark.usefixtures("one_thread")


def test_theory_lines_are_the_constructions_sizes():
    assert jl_dim(128) == 89 and jl_dim(129) == 89 and jl_dim(4) == 34
    assert figures.theory_d("mamba", "mqar", 8, 128) == 8 + 89                    # Thm. 2 with Lem. 4's p
    assert figures.theory_d("mamba2", "mqar", 4, 128) == 34 + 89                  # Thm. 3: p(κ) + p(|V|)
    assert figures.theory_d("mamba-s4d", "mqar", 4, 128) == 4 * 89                # Thm. 4: κ·p(|V| + 1)
    assert figures.theory_d("mamba", "mqar", 8, 128, "step1") == 136
    assert figures.theory_d("mamba-s4d", "mqar", 8, 128, "step1") == 8 * 128
    assert figures.theory_d("mamba-dt", "induction", 20, None) == 40               # Lem. 3: d = 2|V|
    with pytest.raises(ValueError, match="theory must be one of lem4, step1"):
        figures.theory_d("mamba", "mqar", 8, 128, "paper")


def test_state_sizes_follow_each_figures_rule():
    fig2 = {p.model: p for p in figures.FIGURES["fig2"]}
    assert [fig2["mamba2"].N(k) for k in (4, 8, 16, 32)] == [12, 17, 23, 28]      # ⌈8 ln κ⌉
    assert [fig2["mamba"].N(k) for k in (4, 8, 16, 32)] == [8, 16, 32, 64]        # 2κ
    assert {fig2["mamba-s4d"].N(k) for k in (4, 32)} == {4}
    assert [p.N(10) for p in figures.FIGURES["figa4"][::2]] == [10, 20, 40]       # |V|, 2|V|, 4|V|
    assert len(figures.FIGURES["figa3"]) == 12 and len(figures.FIGURES["figa2"]) == 6


@pytest.mark.parametrize("figure", list(figures.FIGURES))
def test_grids_bracket_the_lines_by_two_points_on_each_side(figure):
    for p in figures.FIGURES[figure]:
        for x in p.xs:
            line = p.theory(x)
            below = [d for d in p.grid if d < line]
            above = [d for d in p.grid if d >= line]
            if p.model != "mamba-s4d" or x in (4, 8):
                assert len(below) >= 2 and len(above) >= 2, (p.title, x, line)


def _fake(cells, acc):
    return [{"record": {"metrics": {"accuracy": acc(p, x, d, run.seed)}}} for p, x, d, run in cells]


def test_summary_reads_best_of_seeds_smallest_solving_d_and_separation():
    chosen = figures.panels("fig3", xs=[5, 10])
    cells = figures.figure_runs(chosen, Recipe(epochs=1), seeds=[0, 1], d=[8, 16, 24])
    assert len(cells) == 2 * 2 * 3 * 2

    def acc(p, x, d, seed):            # Δ⊤ solves from d = 2|V| on with one of two seeds; Mamba never quite
        if p.model == "mamba-dt":
            return 1.0 if d >= 2 * x and seed == 1 and x == 5 else 0.5
        return 0.9

    summary = figures.summarise(cells, _fake(cells, acc))
    dt = next(s for s in summary if s["model"] == "mamba-dt")
    assert [r["smallest_d"] for r in dt["per_x"]] == [16, None]                # |V| = 10: line 20, grid 24
    assert [r["theory_d"] for r in dt["per_x"]] == [10, 20]
    c = {(c["x"], c["d"]): c for c in dt["cells"]}
    assert c[(5, 16)]["best"] == 1.0 and c[(5, 16)]["mean"] == 0.75 and c[(5, 16)]["above"]
    assert dt["above_solve"] == pytest.approx(2 / 3)                           # (5, 16), (5, 24) solve; (10, 24) not
    assert dt["below_fail"] == 1.0
    assert figures.delta_t_vs_mamba(summary) == [{"n_rule": "4|V|", "cells": 6, "dt_at_least": pytest.approx(1 / 3)}]


def test_the_heat_map_draws_a_panel_whose_columns_are_not_all_measured(tmp_path):
    """A stored figure measured in part (here |V| = 10 only) still has every column's theory line to draw."""
    chosen = figures.panels("fig3", xs=[5, 10])
    cells = [c for c in figures.figure_runs(chosen, Recipe(epochs=1), seeds=[0], d=[8, 24]) if c[1] == 10]
    summary = figures.summarise(cells, _fake(cells, lambda p, x, d, seed: 0.5))
    assert {r["x"] for s in summary for r in s["per_x"]} == {5, 10} and {c["x"] for c in summary[0]["cells"]} == {10}
    out = plot_recall_figure(summary, tmp_path / "fig.png")
    assert out.stat().st_size > 0


def test_fig2_counts_its_runs():
    cells = figures.figure_runs(figures.panels("fig2"), Recipe())
    want = sum(len(p.xs) * len(p.grid) * 7 for p in figures.FIGURES["fig2"])
    assert len(cells) == want == 4 * 7 * (10 + 10 + 7)
    assert {c[3].task.kappa for c in cells} == {4, 8, 16, 32}
    assert {c[3].model.conv for c in cells} == {4} and {c[3].model.name for c in cells} == {"mamba", "mamba2",
                                                                                             "mamba-s4d"}


TINY = ["--epochs", "1", "--batch-size", "4", "--train-size", "8", "--val-size", "4", "--test-size", "8",
        "--device", "cpu", "--no-progress", "--no-store"]


def test_reproduce_figure_prints_lines_grid_and_writes_the_plot(tmp_path, capsys):
    png = tmp_path / "fig3.png"
    code, out, err = run(["reproduce", "fig3", "--x", "5", "--d", "4", "16", "--seeds", "1", *TINY, "--plot",
                          str(png)], capsys)
    assert code == 0, err
    assert "Mamba-Δ⊤, N = 4|V|" in out and "theory d" in out and "paper: Mamba-Δ⊤ is equal to or better" in out
    assert "Mamba-Δ⊤ at least as accurate as Mamba in" in out
    assert "stop after 10 epochs without a validation-accuracy gain of 0.01 (paper: no such stop)" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    code, out, err = run(["reproduce", "fig2", "--x", "4", "--d", "16", "--models", "mamba2", "--seeds", "1", *TINY,
                          "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    (panel,) = rec["metrics"]["panels"]
    assert panel["panel"] == "Mamba-2, |V| = 128, N = 8 ln κ" and panel["per_x"][0]["theory_d"] == 123
    assert len(rec["config"]["runs"]) == 1
    assert rec["config"]["recipe"]["patience"] == 10                 # the figures' plateau stop, by default


@pytest.mark.parametrize("argv,msg", [
    (["reproduce", "table1", "--x", "4"], "--x, --theory and --score-at apply to the figures"),
    (["reproduce", "fig2", "--n", "4"], "--n and --lengths do not apply"),
    (["reproduce", "fig2", "--models", "transformer"], "no panel of fig2 matches"),
    (["reproduce", "table-a1", "--plot", "x.png"], "--plot applies to the figures only"),
])
def test_reproduce_figure_bad_input_exits_2(argv, msg, capsys):
    code, _, err = run(argv + TINY, capsys)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_ln_rules_round_up():
    assert figures.N_RULES["8 ln κ"](4) == math.ceil(8 * math.log(4)) == 12


def test_reproduce_figure_stored_keeps_complete_cells_only(tmp_path, capsys):
    db = str(tmp_path / "runs.sqlite")
    tiny = [a for a in TINY if a != "--no-store"] + ["--store", db]
    base = ["reproduce", "fig3", "--x", "5", "--models", "mamba-dt", "--seeds", "1", *tiny]
    code, _, err = run(base + ["--d", "4"], capsys)
    assert code == 0, err
    code, out, err = run(base + ["--d", "4", "16", "--stored", "--json"], capsys)
    assert code == 0, err
    (panel,) = json.loads(out)["metrics"]["panels"]
    assert [(c["x"], c["d"]) for c in panel["cells"]] == [(5, 4)]


def test_rescoring_at_the_trained_positions_gives_the_recorded_accuracy_and_elsewhere_a_new_one(tmp_path):
    """The weights read back from the store and scored by the lab's one accuracy on the regenerated test set give
    the accuracy the trainer recorded; at the hard positions the test set scores other positions."""
    from ssm.training import run_sweep

    recipe = Recipe(epochs=2, batch_size=4, train_size=16, val_size=8, test_size=40)
    cells = figures.figure_runs(figures.panels("fig3", xs=[5]), recipe, seeds=[0, 1], d=[4])
    results = run_sweep([c[3] for c in cells], store=tmp_path / "runs.sqlite", device="cpu", progress=False)
    again = figures.rescore(cells, results, "all")
    for old, new in zip(results, again):
        assert math.isclose(new["record"]["metrics"]["accuracy"], old["record"]["metrics"]["accuracy"],
                            abs_tol=1e-6)        # the trainer divides in float32; one position of 4 000 is 2.5e-4
        assert new["record"]["metrics"]["trained_accuracy"] == old["record"]["metrics"]["accuracy"]
    hard = figures.rescore(cells, results, "hard", samples=24)
    assert all(0 <= h["record"]["metrics"]["accuracy"] <= 1 for h in hard)
    assert [h["record"]["metrics"]["accuracy"] for h in hard] != [a["record"]["metrics"]["accuracy"] for a in again]
    mqar = figures.figure_runs(figures.panels("fig2", xs=[4], models=["mamba"]), recipe, seeds=[0], d=[16])
    with pytest.raises(ValueError, match="applies to the INDUCTION HEADS figures"):
        figures.rescore(mqar, [results[0]], "hard")


def test_score_at_prints_its_positions_and_is_refused_for_tables(tmp_path, capsys):
    db = str(tmp_path / "runs.sqlite")
    argv = ["reproduce", "fig3", "--x", "5", "--d", "4", "--seeds", "1", *TINY[:-1], "--store", db]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    code, out, err = run(argv + ["--stored", "--score-at", "hard", "--samples", "16"], capsys)
    assert code == 0, err
    assert "accuracy scored at the 'hard' positions of the test sets" in out
    code, _, err = run(["reproduce", "table1", "--score-at", "hard"], capsys)
    assert code == 2 and "--score-at apply to the figures" in err
    code, _, err = run(["reproduce", "fig2", "--x", "4", "--d", "16", "--models", "mamba", "--score-at", "hard",
                        *TINY], capsys)
    assert code == 2 and "--score-at applies to the INDUCTION HEADS figures" in err
