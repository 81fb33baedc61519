"""``approx mechanism``: the mechanistic study of how Mamba does associative recall (its Lemma 1 for now)."""
from __future__ import annotations

import math
import time

import click

from approx.records import make_record, to_json
from ssm.mechanism.lemma import lemma_values, population_gradient

from .train import VariadicCommand

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


@click.group("mechanism")
def mechanism():
    """How a trained Mamba does associative recall (the mechanistic study): its Lemma 1."""


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
