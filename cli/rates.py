"""``approx rates``: the Cor. 1 measurement — ``l2_sq`` against N, fitted rates beside the theory."""
from __future__ import annotations

import csv
import io
import math

import click

from approx import registry
from approx.plots import check_plot_path
from approx.rates import CSV_HEADER, DEFAULT_M, default_strategies, fit_table, rate_sweep
from approx.records import atomic_write, check_output_path, to_json
from approx.store import DEFAULT_PATH
from kernels import DEVICES

from .options import refuse, sharpness

#: options that take several values after one flag (``--m 1 2 3 5``)
VARIADIC = ("--m", "--basis", "--strategy", "--learned-n")


def _looks_like_value(token: str) -> bool:
    if not token.startswith("-"):
        return True
    try:
        float(token)
        return True
    except ValueError:
        return False


def expand_variadic(args, names=VARIADIC) -> list:
    """Rewrite ``--m 1 2 3`` as ``--m 1 --m 2 --m 3`` for the options in ``names`` (click's ``multiple=True``
    then collects them). Values run until the next option; a negative number counts as a value (and is then
    rejected by the option's own check, naming it). ``--m=1`` and anything after ``--`` are left alone."""
    out, i = [], 0
    args = list(args)
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out += args[i:]
            break
        if tok in names:
            values = []
            i += 1
            while i < len(args) and _looks_like_value(args[i]):
                values.append(args[i])
                i += 1
            if not values:
                out.append(tok)                       # let click report the missing value
            for v in values:
                out += [tok, v]
            continue
        out.append(tok)
        i += 1
    return out


class VariadicCommand(click.Command):
    """A click command whose :data:`VARIADIC` options accept several space-separated values."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, expand_variadic(args))


def _num(v, fmt="{:.3f}"):
    if v is None:
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return fmt.format(v)


def format_table(sweep) -> str:
    """The rate table: one line per unit (measured rate, 95 % CI, fit range, theory), then the verdicts."""
    cfg = sweep.config
    lines = [f"approx rates: piecewise signals, L = {cfg['samples']}, {cfg['trials']} trials, N = 1..{cfg['n_max']}, "
             f"seed {cfg['seed']}, device {sweep.device}; l2_sq = squared grid L² error, rate fitted to its "
             f"geometric mean over trials, 95 % bootstrap CI over trials",
             f"{'m':>2}  {'basis/strategy':<18} {'law':<22} {'measured [95% CI]':<28} {'fit N':<9} "
             f"{'theory':<10} {'floor N':>7}  {'time':>7}"]
    for row, u in zip(fit_table(sweep), sweep.units):
        law = {"power": "l2_sq ~ N^p", "exp": "l2_sq ~ 2^(-N/c)", "floor": "exact at N = m+1",
               "-": "no rate stated"}[row["law"]]
        if row["estimate"] is not None:
            meas = f"{row['name']} = {_num(row['estimate'], '{:.3f}')} [{_num(row['ci'][0])}, {_num(row['ci'][1])}]"
            rng = f"{row['n_range'][0]}-{row['n_range'][1]}"
        else:
            meas, rng = "—", "—"
        th = {"power": "p = -1", "exp": f"c <= {row['theory']:g}", "floor": f"N = {row['theory']:g}",
              "-": "—"}[row["law"]]
        time_s = "stored" if u["reused"] else f"{u['wall_s']:.2f}s"
        lines.append(f"{row['m']:>2}  {row['unit']:<18} {law:<22} {meas:<28} {rng:<9} {th:<10} "
                     f"{_num(row['floor_n'], '{}'):>7}  {time_s:>7}")
        for info in u["extra"].get("learned", []):
            detail = f"      learned N = {info['n']}: l2_sq < {info['threshold']:g} in {info['below_threshold']}/" \
                     f"{info['trials']} trials (median {info['median_l2_sq']:.2e}, L = {u['extra']['samples']}, " \
                     f"{info['train_s']:.1f}s)"
            if "jumps_within_2_cells" in info:
                detail += (f"; a sharp edge within 2 cells of every jump in {info['jumps_within_2_cells']}/"
                           f"{info['trials']} (and below {info['threshold']:g}: "
                           f"{info['good_with_m_sharp_at_jumps']}), median {info['sharp_per_trial_median']:g} "
                           f"sharp bases per trial")
                if info["abs_w_median_sharp"] is not None:
                    detail += (f" (|w| = {info['abs_w_median_sharp']:.3g}, λ = {info['lam_median_sharp']:.3g}, "
                               f"width 1/sqrt(λ|w|) = {info['edge_width_median_sharp']:.2e})")
            lines.append(detail)
    lines.append("")
    for u in sweep.units:
        lines.append(f"m = {u['m']} {u['basis']}/{u['strategy']}: {u['verdict']}")
    ratios = [f"m = {u['m']}: {u['c_ratio']:.2f} (Haar refitted over N {u['matched_haar']['n_range'][0]}-"
              f"{u['matched_haar']['n_range'][1]}: c = {u['matched_haar']['estimate']:.3f})"
              for u in sweep.units if "c_ratio" in u]
    if ratios:
        lines.append("Mamba-Haar c / Haar c over the same atoms (theory 3: three Mamba bases per wavelet): "
                     + "; ".join(ratios))
    return "\n".join(lines)


def csv_text(sweep) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    w.writerows(sweep.csv_rows())
    return buf.getvalue()


def _strategy_help() -> str:
    defaults = ", ".join(f"{b} {' + '.join(default_strategies(b))}" for b in ("s4d", "mamba"))
    return ("Strategies, several after one flag; each runs on every listed basis that has it: "
            f"{registry.help_text(fit=False)}. [default: {defaults}]")


@click.command("rates", cls=VariadicCommand)
@click.option("--signal", type=click.Choice(["piecewise"]), default="piecewise", show_default=True,
              help="Target signals: random piecewise-constant with m jumps (docs/design.md §1).")
@click.option("--m", "m", type=int, multiple=True, help=f"Numbers of jumps, several after one flag "
              f"(--m 1 2 3 5). [default: {' '.join(map(str, DEFAULT_M))}]")
@click.option("--basis", multiple=True, type=click.Choice(registry.bases()),
              help=f"Bases, several after one flag: {', '.join(registry.bases())}. [default: s4d mamba]")
@click.option("--strategy", multiple=True, help=_strategy_help())
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Add the ideal haar/best and fourier/partial references.")
@click.option("--n-max", type=int, default=64, show_default=True, help="Largest N (N = 1..n-max).")
@click.option("--trials", type=int, default=100, show_default=True, help="Random signals per m.")
@click.option("--samples", type=int, default=4096, show_default=True,
              help="Grid points L (a power of two for Haar/Mamba-Haar; 65536 lets the Haar fits span more scales).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: trial t draws from (seed, t).")
@click.option("--sharpness", default="auto", show_default=True, callback=sharpness,
              help="|w| of the Mamba Heavisides ('auto' = 64·L²).")
@click.option("--time", type=click.Choice(["pe", "recover"]), default="pe", show_default=True,
              help="How Δ reads time: positional encoding or Prop. 1's recovered time.")
@click.option("--learned-n", type=int, multiple=True,
              help="N trained by --strategy learned, several after one flag. [default: m + 1]")
@click.option("--learned-steps", type=int, default=600, show_default=True, help="Adam steps of learned bases.")
@click.option("--learned-samples", type=int, default=128, show_default=True,
              help="Grid points of learned runs (training runs the scan; small L keeps it fast on CPU).")
@click.option("--learned-restarts", type=int, default=8, show_default=True,
              help="Random starts per trial of learned bases (the best is kept).")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--store", "store", type=click.Path(dir_okay=False), default=DEFAULT_PATH, show_default=True,
              help="SQLite store in the current folder unless a path is given: finished units are reused, a killed "
                   "sweep resumes.")
@click.option("--no-store", is_flag=True, default=False, help="Keep nothing (no SQLite store is written).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the sweep record as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write per-N statistics to a CSV file (its folder must exist).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write the rate plot (.png or .svg; its folder must exist).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar on stderr (shown on a terminal only).")
@click.pass_context
def rates(ctx, signal, m, basis, strategy, reference, n_max, trials, samples, seed, sharpness, time, learned_n,
          learned_steps, learned_samples, learned_restarts, device, store, no_store, as_json, csv_path, plot,
          progress):
    """l2_sq against N for S4D, Mamba, Haar and Fourier bases on piecewise-constant signals with m jumps,
    with the rates fitted (95 % CI, fit range) beside Cor. 1's theory. Finished units are kept in the SQLite
    store ./runs.sqlite (--store PATH elsewhere, --no-store for none).

    Example: approx rates --m 1 2 3 5 --basis s4d mamba --n-max 64 --trials 100 --plot rates.png
    """
    if no_store:
        refuse(ctx, ["store"], "with --no-store (nothing is stored)")
    if "learned" not in strategy:
        refuse(ctx, ["learned_n", "learned_steps", "learned_samples", "learned_restarts"],
               "without --strategy learned (they shape the learned bases)")
    if csv_path is not None:
        check_output_path("--csv", csv_path)
    if plot is not None:
        check_plot_path(plot, "--plot")
    sweep = rate_sweep(signal=signal, m=list(m) or DEFAULT_M, basis=list(basis) or ["s4d", "mamba"],
                       strategy=list(strategy) or None, reference=reference, n_max=n_max, trials=trials,
                       samples=samples, seed=seed, sharpness=sharpness, time=time, device=device,
                       store=None if no_store else store, progress=progress, learned_n=list(learned_n),
                       learned_steps=learned_steps, learned_samples=learned_samples,
                       learned_restarts=learned_restarts)
    if csv_path is not None:
        atomic_write(csv_path, csv_text(sweep))
    if plot is not None:
        from approx.rate_plots import plot_rates
        plot_rates(sweep, plot)
    click.echo(to_json(sweep.record()) if as_json else format_table(sweep))
