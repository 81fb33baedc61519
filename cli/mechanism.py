"""``approx mechanism``: the mechanistic study of how Mamba does associative recall — training the simplified
Mamba on the latest-value MQAR, probing it (Figs. 4 and 7, App. C) and Lemma 1's gradient step."""
from __future__ import annotations

import math
import time

import torch

import click

from approx.records import make_record, to_json
from approx.store import DEFAULT_PATH
from ssm.mechanism import probes, table1 as study_table
from ssm.models import build
from ssm.mechanism.lemma import lemma_values, population_gradient
from ssm.training import distributed
from ssm.training.recipe import describe
from ssm.training.sweep import run_sweep, stored

from .options import LabGroup
from .train import VariadicCommand, check_plot

ROWS = (("W[0, 0]", "w_0_0", None), ("row 0 (sum over j)", "row_0", "row_0"),
        ("W[|V|, |V|]", "w_V_V", None), ("row |V| (sum over j)", "row_V", "row_V"),
        ("rows 0 < i < |V| (mean row sum)", "rows_mid", "rows_mid"),
        ("rows i > |V| (mean row sum)", "rows_high", "rows_high"))


class LemmaCommand(VariadicCommand):
    variadic = ("--vocab", "--length")


def format_lemma(results: list, samples: int) -> str:
    lines = [f"approx mechanism lemma: E[∂ℓ/∂W_Δ] at W_Δ = 0 (softplus dropped, transition 1), Monte Carlo over "
             f"{samples} sequences x_0 = x_T = key; ± one standard error", ""]
    for r in results:
        V, T, s = r["vocab"], r["length"], r["summary"]
        lines.append(f"|V| = {V}, T = {T}" + ("  (|V| ≫ T, the lemma's regime)" if V >= 4 * T else ""))
        lines.append(f"  {'entry':<34} {'measured':>22} {'lemma (eq. 4)':>14}")
        for label, key, lemma_key in ROWS:
            m, se = s[key]
            lemma = "—" if lemma_key is None else f"{r['lemma'][lemma_key]:.4g}"
            lines.append(f"  {label:<34} {m:>12.4g} ± {se:<7.1g} {lemma:>14}")
        lines.append(f"  share of Σ|∂ℓ/∂W| in rows 0 and |V|: {s['share_rows_0_V']:.2f}; largest |entry| there "
                     f"{s['max_rows_0_V']:.3g}, elsewhere {s['max_other_rows']:.3g}")
        lines.append("")
    lines.append("Measured W[0, 0] = −1/|V| and W[|V|, |V|] = 2/|V| exactly (the same in every sequence); the lemma "
                 "states −1/T and 2/T for rows 0 and |V|.")
    return "\n".join(lines)


@click.group("mechanism", cls=LabGroup)
def mechanism():
    """How a trained Mamba does associative recall (the mechanistic study): train, probe, lemma, table1."""


def setting_options(fn):
    """The latest-value MQAR setting and the recipe that identify a study run (defaults: the study's |K| = 1)."""
    opts = [
        click.option("--keys", "n_keys", type=int, default=1, show_default=True, help="|K|, the number of keys."),
        click.option("--vocab", type=int, default=8, show_default=True, help="|V|, keys and values together."),
        click.option("--noise", type=int, default=3, show_default=True, help="n_ε, noise tokens before a pair."),
        click.option("--length", type=int, default=256, show_default=True, help="T."),
        click.option("--epochs", type=int, default=probes.RECIPE.epochs, show_default=True),
        click.option("--train-size", type=int, default=probes.RECIPE.train_size, show_default=True),
        click.option("--lr", type=float, default=probes.RECIPE.lr, show_default=True),
        click.option("--w-init", type=click.Choice(["uniform", "zero"]), default="uniform", show_default=True,
                     help="W_Δ's initialisation: a Linear's U(±d^(−1/2)), or 0 as Lemma 1 starts."),
        click.option("--learn-head", is_flag=True, default=False,
                     help="Learn the read-out instead of fixing it to [−I I] (the model of Fig. 6)."),
        click.option("--bc-of", type=click.Choice(["token", "pair"]), default="token", show_default=True,
                     help="--keys ≥ 2: B and C per current token (the study's eq. 1) or linear in the pair x̂."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--store", type=click.Path(dir_okay=False), default=DEFAULT_PATH, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _runs(n_keys, vocab, noise, length, epochs, train_size, lr, w_init, learn_head, bc_of, seeds):
    if bc_of != "token" and n_keys == 1:
        raise ValueError("bc_of applies to --keys 2 or more (at |K| = 1, B = C = 1)")
    recipe = probes.RECIPE.replace(epochs=epochs, train_size=train_size, lr=lr)
    return probes.runs(n_keys=n_keys, vocab=vocab, noise=noise, length=length, seeds=seeds, recipe=recipe,
                       w_init=w_init, learn_head=learn_head, bc_of=bc_of), recipe


@mechanism.command("train")
@setting_options
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds 0..k−1, trained as one ensemble.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def train(n_keys, vocab, noise, length, epochs, train_size, lr, w_init, learn_head, bc_of, device, store, as_json,
          seeds, progress):
    """Train the simplified Mamba on the latest-value MQAR (the study's Sec. 3) and report, per seed, the test
    accuracy at the queries and the steps until an epoch's training accuracy reached 100%."""
    start = time.perf_counter()
    runs, recipe = _runs(n_keys, vocab, noise, length, epochs, train_size, lr, w_init, learn_head, bc_of,
                         range(seeds))
    results = run_sweep(runs, store=store, device=device, progress=progress)
    if not distributed.is_main():
        return
    rows = [{"seed": r.seed, "key": res["record"]["key"], "accuracy": res["record"]["metrics"]["accuracy"],
             "steps_to_100": probes.steps_to_solve(res["arrays"], recipe)} for r, res in zip(runs, results)]
    config = {"kind": "mechanism-train", "run": runs[0].config(), "seeds": seeds}
    record = make_record(config, {"runs": rows}, seed=list(range(seeds)), device=distributed.device(device),
                         wall_s=time.perf_counter() - start)
    if as_json:
        click.echo(to_json(record))
        return
    lines = [f"approx mechanism train: {runs[0].model.describe()} on {runs[0].task.describe()}",
             f"recipe: {describe(recipe)} (the study states none)", "",
             f"{'seed':>4}  {'test acc.':>9}  {'steps to 100% train acc.':>24}  {'run':>16}"]
    for r in rows:
        steps = "not reached" if r["steps_to_100"] is None else str(r["steps_to_100"])
        lines.append(f"{r['seed']:>4}  {r['accuracy']:>9.4f}  {steps:>24}  {r['key']:>16}")
    click.echo("\n".join(lines))


@mechanism.command("probe")
@click.option("--figure", type=click.Choice(["4", "5", "6", "7", "c"]), required=True,
              help="4: the traces along one sequence; 5: the keys' B and C (--keys 2); 6: the learned read-out "
                   "against [−I I] (--learn-head); 7: W_Δ; c: App. C's write / read / forget mechanisms.")
@setting_options
@click.option("--seed", type=int, default=0, show_default=True, help="Which trained seed to probe.")
@click.option("--sequence-seed", type=int, default=0, show_default=True, help="Fig. 4: the sequence drawn.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Fig. 4 or 7 as .png or .svg.")
def probe(figure, n_keys, vocab, noise, length, epochs, train_size, lr, w_init, learn_head, bc_of, device, store,
          as_json, seed, sequence_seed, plot):
    """Look inside a trained simplified Mamba: Figs. 4, 7 and App. C (|K| = 1), Fig. 5 (|K| ≥ 2), beside the
    study's numbers."""
    check_plot(plot)
    if plot is not None and figure in ("c", "5", "6"):
        raise ValueError("--plot draws Fig. 4 or 7; App. C, Figs. 5 and 6 are tables")
    if (n_keys == 1) == (figure == "5") and figure != "6":
        raise ValueError("Fig. 5 reads the learned B, C of a model with --keys 2 or more; Figs. 4, 7 and App. C "
                         "the --keys 1 model (N = 1, B = C = 1)")
    if learn_head != (figure == "6"):
        raise ValueError("Fig. 6 reads the learned read-out of a model trained with --learn-head; the other "
                         "figures the model with the fixed [−I I]")
    start = time.perf_counter()
    runs, _ = _runs(n_keys, vocab, noise, length, epochs, train_size, lr, w_init, learn_head, bc_of, [seed])
    if not stored(runs, store)[0]:
        raise ValueError(f"the store {store!r} holds no such trained run: train it first with approx mechanism "
                         f"train (same setting and recipe, --seeds > {seed})")
    (res,) = run_sweep(runs, store=store, device="cpu", progress=False)
    params = {k[len("weights."):]: torch.as_tensor(v)[None][0] for k, v in res["arrays"].items()
              if k.startswith("weights.")}
    if figure == "4":
        seq = runs[0].task.generate(1, 10_000 + sequence_seed)
        tokens = seq.inputs[0]
        out = probes.trace(params, tokens, vocab)
        metrics = {"keys": out["keys"], "query_prediction": int(out["y"][-1].argmax()),
                   "query_target": int(seq.targets[0, -1])}
        text = _format_trace(out, tokens, vocab) + (f"\nquery at t = {length - 1}: predicted {metrics['query_prediction']}, "
                                                    f"target {metrics['query_target']}")
        if plot is not None:
            from approx.plots_mechanism import plot_trace
            plot_trace(out, plot, title=f"Fig. 4: trained simplified Mamba, |V| = {vocab}, seed {seed}")
    elif figure == "7":
        model = build(runs[0].model, vocab_size=vocab, num_classes=vocab, length=length)
        init = {k: v[0] for k, v in model.init([seed], dtype=torch.float64).items()}
        out = probes.w_delta_structure(params, vocab, init)
        metrics = {k: v for k, v in out.items() if k != "abs"}
        text = (f"Fig. 7: |W_Δ| of seed {seed}: rows 0 and |V| ({out['rows_0_V_fraction_of_entries']:.0%} of the "
                f"rows) hold {out['share_rows_0_V']:.0%} of its mass ({out['share_rows_0_V_second_half']:.0%} in "
                f"their second half of columns), and {out['change_share_rows_0_V']:.0%} "
                f"({out['change_share_rows_0_V_second_half']:.0%}) of what training changed from the initial "
                f"weights. The study: close to zero almost everywhere except the second part of rows 0 and |V|.")
        if plot is not None:
            from approx.plots_mechanism import plot_w_delta
            plot_w_delta(out["abs"], plot, title=f"Fig. 7: |W_Δ|, |V| = {vocab}, seed {seed}")
    elif figure == "6":
        model = build(runs[0].model, vocab_size=vocab, num_classes=vocab, length=length)
        init = model.init([seed], dtype=torch.float64)["head"][0]
        metrics = {"learned": probes.readout_distance(params["head"]),
                   "change": probes.readout_distance(params["head"].double() - init)}
        m, c = metrics["learned"], metrics["change"]
        text = (f"Fig. 6: the learned read-out W_o against [−I I] (seed {seed}, test accuracy "
                f"{res['record']['metrics']['accuracy']:.3f}; relative distance 0 = [−I I] up to scale, 1 = "
                f"orthogonal to it, in parentheses with the rows' common part removed): W_o {m['relative_distance']:.2f} "
                f"({m['relative_distance_centred']:.2f}); what training changed, W_o − W_o(0), "
                f"{c['relative_distance']:.2f} ({c['relative_distance_centred']:.2f}). The study: close to (−I, I).")
    elif figure == "5":
        metrics = probes.key_vectors(params, n_keys, vocab if bc_of == "pair" else None)
        text = _format_keys(metrics, n_keys, res["record"]["metrics"]["accuracy"])
    else:
        metrics = probes.mechanisms(params, vocab)
        text = _format_mechanisms(metrics)
    config = {"kind": "mechanism-probe", "figure": figure, "run": runs[0].config()}
    record = make_record(config, metrics, seed=seed, device="cpu", wall_s=time.perf_counter() - start)
    click.echo(to_json(record) if as_json else text)


def _format_trace(out: dict, tokens, vocab: int) -> str:
    keys = out["keys"]
    lines = [f"Fig. 4 along one sequence of T = {len(tokens)}: the key at positions {keys[:12]}"
             + (" …" if len(keys) > 12 else ""),
             f"{'t':>4} {'x_t':>4}  {'max input term':>14}  {'min forgetting':>14}  {'argmax y_t':>10}"]
    for t in range(min(len(tokens), 24)):
        lines.append(f"{t:>4} {int(tokens[t]):>4}  {out['input'][t].max():>14.3g}  {out['forget'][t].min():>14.3g}  "
                     f"{int(out['y'][t].argmax()):>10}")
    lines.append("…")
    return "\n".join(lines)


def _format_mechanisms(m: dict) -> str:
    lines = ["App. C: forgetting factors e^(Λ⊙Δ_t) and input terms Δ_t ⊙ x̂_t of the trained model, averaged over "
             "the token pairs of each case, beside the study's approximate values", "",
             f"{'case':<8} {'quantity':<26} {'measured':>9} {'study':>7}"]
    for case, values in m.items():
        for k, v in values.items():
            lines.append(f"{case:<8} {k:<26} {v:>9.3g} {probes.PAPER[case][k]:>7g}")
    return "\n".join(lines)


@mechanism.command("lemma", cls=LemmaCommand)
@click.option("--vocab", type=int, multiple=True, help="|V| of each setting (default 8 64 256).")
@click.option("--length", type=int, multiple=True, help="T of each setting, paired with --vocab (default 256 16 16).")
@click.option("--samples", type=int, default=20_000, show_default=True, help="Monte-Carlo sequences per setting.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON.")
def lemma(vocab, length, samples, seed, as_json):
    """Lemma 1: one population-gradient step on W_Δ from W_Δ = 0, estimated by Monte Carlo, beside eq. (4)."""
    vocab, length = list(vocab) or [8, 64, 256], list(length) or [256, 16, 16]
    if len(vocab) != len(length):
        raise ValueError(f"--vocab and --length pair up: got {len(vocab)} and {len(length)} values")
    start = time.perf_counter()
    results = []
    for V, T in zip(vocab, length):
        r = population_gradient(V, T, samples, seed=seed)
        results.append({"vocab": V, "length": T, "summary": r["summary"], "lemma": lemma_values(V, T)})
    config = {"kind": "mechanism-lemma", "settings": [[V, T] for V, T in zip(vocab, length)], "samples": samples}
    clean = [{**r, "summary": {k: (list(v) if isinstance(v, tuple) else (None if isinstance(v, float) and
                                                                         math.isnan(v) else v))
                               for k, v in r["summary"].items()}} for r in results]
    record = make_record(config, {"settings": clean}, seed=seed, device="cpu", wall_s=time.perf_counter() - start)
    click.echo(to_json(record) if as_json else format_lemma(results, samples))


def _format_keys(m: dict, n_keys: int, accuracy: float) -> str:
    lines = [f"Fig. 5: the keys' learned B(x_t) and C(x_t) (test accuracy of this run {accuracy:.3f})"]
    for name in ("B", "C"):
        for i, v in enumerate(m[name]):
            lines.append(f"  {name}_{i + 1} = ({', '.join(f'{x:.3g}' for x in v)})")
    lines.append(f"  {'quantity':<14} {'measured':>9} {'cosine':>7} {'study':>6}")
    for name in ("B", "C"):
        for i in range(n_keys):
            for j in range(i + 1, n_keys):
                k = f"<{name}_{i + 1}, {name}_{j + 1}>"
                study = probes.PAPER_FIG5.get(k)
                lines.append(f"  {k:<14} {m[k]:>9.3g} {m[f'cos({name}_{i + 1}, {name}_{j + 1})']:>7.2f} "
                             f"{'—' if study is None else f'{study:g}':>6}")
    return "\n".join(lines)


class Table1Command(VariadicCommand):
    variadic = ("--rows", "--lengths", "--kappas")


@mechanism.command("table1", cls=Table1Command)
@click.option("--rows", multiple=True, type=click.Choice(list(study_table.ROWS)),
              help="Only these rows (several after one flag).")
@click.option("--lengths", type=int, multiple=True, help="Only these T (default 128 256 512).")
@click.option("--kappas", type=int, multiple=True, help="Only these κ (default 1 4).")
@click.option("--seeds", type=int, default=3, show_default=True)
@click.option("--epochs", type=int, default=study_table.RECIPE.epochs, show_default=True)
@click.option("--train-size", type=int, default=study_table.RECIPE.train_size, show_default=True)
@click.option("--lr", type=float, default=study_table.RECIPE.lr, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--store", type=click.Path(dir_okay=False), default=DEFAULT_PATH, show_default=True)
@click.option("--stored", "stored_only", is_flag=True, help="Train nothing: report the cells the store holds.")
@click.option("--checkpoint-every", type=float, default=300.0, show_default=True,
              help="Seconds between checkpoints of a run in progress.")
@click.option("--concurrent", type=int, default=1, show_default=True,
              help="Ensemble groups trained at once, interleaved (on a GPU each on its own CUDA stream).")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON.")
def table1(rows, lengths, kappas, seeds, epochs, train_size, lr, device, store, stored_only, checkpoint_every,
           concurrent, progress, as_json):
    """The study's Table 1: 1-layer Mamba against 1- and 2-layer Transformers (with and without convolution and
    RoPE) on the latest-value MQAR, the study's accuracy beside the lab's (a GPU run: ~10⁵ steps per cell)."""
    start = time.perf_counter()
    recipe = study_table.RECIPE.replace(epochs=epochs, train_size=train_size, lr=lr)
    chosen = study_table.cells(rows, list(lengths), list(kappas))
    if stored_only:
        chosen = [c for c in chosen if all(stored(study_table.runs([c], recipe, range(seeds)), store))]
        if not chosen:
            raise ValueError(f"the store {store!r} holds no complete cell of the study's Table 1 for this recipe")
    runs = study_table.runs(chosen, recipe, range(seeds))
    # one ensemble per cell: the lengths differ 4×, and a group of all three would pad T = 128 and 256 to 512
    results = run_sweep(runs, store=store, device=device, checkpoint_every=checkpoint_every, concurrent=concurrent,
                        max_members=seeds, progress=progress)
    if not distributed.is_main():
        return
    summary = study_table.summarise(chosen, results, seeds)
    config = {"kind": "mechanism-table1", "recipe": recipe.to_dict(), "seeds": seeds,
              "runs": [r["record"]["key"] for r in results]}
    record = make_record(config, {"cells": summary}, seed=list(range(seeds)), device=distributed.device(device),
                         wall_s=time.perf_counter() - start)
    if as_json:
        click.echo(to_json(record))
        return
    lines = [f"approx mechanism table1: latest-value MQAR, |V| = {study_table.VOCAB}, n_ε = {study_table.NOISE}, "
             f"{seeds} seed(s), accuracy (%) at the queries",
             f"recipe: {describe(recipe)} (the study states none)", "",
             f"{'row':<26} {'params':>7} {'T':>4} {'κ':>2}  {'study':>5}  {'lab mean':>8}  {'lab best':>8}"]
    for c in summary:
        paper = "—" if c["paper"] is None else f"{c['paper']:g}"
        lines.append(f"{c['label']:<26} {c['parameters']:>7} {c['T']:>4} {c['kappa']:>2}  {paper:>5}  "
                     f"{c['mean']:>8.1f}  {c['best']:>8.1f}")
    click.echo("\n".join(lines))
