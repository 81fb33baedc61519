"""``approx fit``: fit one family of basis functions to a signal and print the L² error (table or JSON)."""
from __future__ import annotations

import click

from approx import DEFAULT_N, fit as run_fit, registry
from approx.plots import check_plot_path
from approx.records import to_json
from kernels import DEVICES
from signals import SIGNALS

from .options import refuse, sharpness

MAX_LISTED = 10
#: the options that shape each signal, and the signals they shape
SIGNAL_OPTIONS = {"m": ("piecewise",), "seed": ("piecewise",), "path": ("file",), "resample": ("file",),
                  "j": ("haar",), "k": ("haar",), "at": ("step", "needle"), "width": ("needle",)}
#: condition numbers above this make the coefficients (not the error) unreliable
ILL_CONDITIONED = 1e12


def _listing(values, fmt="{:.6g}") -> str:
    items = [fmt.format(v) if isinstance(v, (int, float)) else str(v) for v in values[:MAX_LISTED]]
    extra = len(values) - MAX_LISTED
    return ", ".join(items) + (f", … (+{extra} more)" if extra > 0 else "")


def format_table(result) -> str:
    """A readable table of one fit: the errors, N, the chosen basis parameters, the time taken."""
    cfg, met, par = result.config, result.metrics, result.params
    what = {"piecewise": f"piecewise (m = {cfg.get('m')}, seed = {cfg['seed']})", "file": f"file {cfg.get('path')}",
            "haar": f"haar ψ({cfg.get('j')},{cfg.get('k')})", "step": f"step at {cfg.get('at')}",
            "needle": f"needle at {cfg.get('at')} (width {cfg.get('width')})"}.get(cfg["signal"], cfg["signal"])
    rows = [("signal", f"{what}, L = {cfg['samples']}"),
            ("basis", f"{cfg['basis']} / {cfg['strategy']}"),
            ("l2_sq", f"{met['l2_sq']:.4e}"),
            ("l2", f"{met['l2']:.4e}"),
            ("relative l2_sq", f"{met['l2_sq'] / met['signal_norm_sq']:.4e}" if met["signal_norm_sq"] else "—"),
            ("N used", f"{met['n_used']} (asked {met['n_requested']})")]
    if "ideal_l2_sq" in met:
        rows.append(("ideal dictionary l2_sq", f"{met['ideal_l2_sq']:.4e}"))
    cond = met.get("condition_number")
    if cond is not None and cond > ILL_CONDITIONED:
        rows.append(("condition number", f"{cond:.2e}: the basis is nearly dependent, so its coefficients are not "
                                         f"unique (the truncated SVD picks the smallest); the error is reliable"))
    if "sharpness" in par:
        auto = " (auto = 64·L²)" if cfg.get("sharpness") == "auto" else ""
        rows.append(("sharpness |w|", f"{par['sharpness']:.4e}{auto}, λ = {par['lam']:g}, time = {par['time']}"))
    if "jumps" in par:
        rows.append(("jumps at", _listing(par["jumps"])))
    if "atoms" in par:
        rows.append(("atoms (j,k)", _listing(["φ" if a["j"] < 0 else f"ψ({a['j']},{a['k']})" for a in par["atoms"]])))
    if "heavisides" in par:
        rows.append(("Heavisides at", _listing(par["heavisides"])))
    if "frequencies" in par:
        rows.append(("frequencies k", _listing([f"{k}:{t}" for k, t in zip(par["frequencies"], par["kinds"])])))
    elif "lambdas" in par:
        rows.append(("λ (re, im)", _listing([f"({a:g}, {b:.4g})" for a, b in par["lambdas"]])))
    rows.append(("wall time", f"{result.wall_s:.3f} s on {result.device}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


@click.command("fit")
@click.option("--signal", type=click.Choice(SIGNALS), default="piecewise", show_default=True,
              help="The signal to fit: piecewise (m random jumps), needle (narrow spike), haar (one wavelet ψ_{j,k}), "
                   "step (H(s − at)), or file (your own .npy/.csv, see --path).")
@click.option("--m", type=int, default=3, show_default=True, help="Number of jumps of the piecewise signal (≥ 0).")
@click.option("--samples", type=int, default=None, show_default="4096; for --signal file the file's length",
              help="Number of grid points L (midpoints s_i = (i − ½)/L). With --signal file only together with "
                   "--resample.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random piecewise signal.")
@click.option("--basis", type=click.Choice(registry.bases()), default="mamba", show_default=True,
              help="Basis family: s4d and mamba are realised through the scan; haar and fourier are the ideal "
                   "reference dictionaries.")
@click.option("--strategy", default=None,
              show_default=", ".join(f"{b}: {registry.get(b).name}" for b in registry.bases()),
              help=f"How the N functions are chosen. {registry.help_text(fit=True)} (docs/fit.md).")
@click.option("--n", "n", type=int, default=DEFAULT_N, show_default=True,
              help="N, the number of real basis functions, one state each (mamba/haar: N Mamba bases realise "
                   "N // 3 Haar atoms).")
@click.option("--time", type=click.Choice(["pe", "recover"]), default="pe", show_default=True,
              help="How the Mamba bases read time: pe appends τ_i = i/L to the input; recover computes it with the "
                   "Prop. 1 scan (λ = 0, B = 1, all-ones input).")
@click.option("--sharpness", default="auto", show_default=True, callback=sharpness,
              help="|w| of the Mamba Heavisides Δ = softplus(w(τ − c)), w = −|w|; auto = 64·L².")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="Where to compute: auto picks CUDA when available.")
@click.option("--path", type=click.Path(dir_okay=False), default=None,
              help="The signal file for --signal file (.npy or .csv, one column).")
@click.option("--resample", is_flag=True, default=False,
              help="Resample the file's signal to --samples points (zero-order hold).")
@click.option("--j", "j", type=int, default=2, show_default=True, help="Scale j of --signal haar.")
@click.option("--k", "k", type=int, default=1, show_default=True, help="Shift k of --signal haar (0 ≤ k < 2^j).")
@click.option("--at", type=float, default=0.5, show_default=True,
              help="Location of --signal step, centre of --signal needle.")
@click.option("--width", type=float, default=0.01, show_default=True, help="Width of --signal needle.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the result record as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write the signal, the fit and the basis functions to this .png or .svg file (its folder must "
                   "exist).")
@click.pass_context
def fit(ctx, signal, m, samples, seed, basis, strategy, n, time, sharpness, device, path, resample, j, k, at, width,
        as_json, plot):
    """Fit N basis functions (S4D, Mamba, ideal Haar or Fourier) to a signal by least squares and report the
    L² error (l2 and l2_sq on the grid) with the chosen basis parameters.

    \b
    Examples:
      approx fit --signal piecewise --m 3 --basis mamba --strategy heaviside --n 4 --plot fit.png
      approx fit --signal file --path examples/my_signal.csv --basis s4d --strategy best --n 32 --json
    """
    for option, owners in SIGNAL_OPTIONS.items():
        if signal not in owners:
            refuse(ctx, [option], f"with --signal {signal} (it shapes --signal {' or '.join(owners)})")
    if basis != "mamba":
        refuse(ctx, ["time", "sharpness"], f"with --basis {basis} (they shape the Mamba bases)")
    if signal == "file" and samples is not None and not resample:
        raise click.UsageError(f"--samples {samples} with --signal file needs --resample "
                               "(otherwise the file's length is L)", ctx)
    if plot is not None:
        check_plot_path(plot, "--plot")
    result = run_fit(signal, basis=basis, strategy=strategy, n=n, time=time, sharpness=sharpness, m=m,
                     samples=samples, seed=seed, path=path, resample=resample, j=j, k=k, at=at, width=width,
                     device=device)
    if plot is not None:
        from approx.plots import plot_fit
        plot_fit(result, plot)
    click.echo(to_json(result.record()) if as_json else format_table(result))
