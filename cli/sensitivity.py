"""``approx sensitivity``: |∂h_t/∂x_j| of one layer (Lemma 1, Lemma 2, Fig. 1, eq. 45), as a table or JSON."""
from __future__ import annotations

import math
import time

import click

from kernels import resolve_device
from approx.records import make_record, to_json
from ssm.sensitivity import EXPERIMENTS, LAYERS, run_sensitivity

MAX_COMPONENTS = 8


def _g(v, fmt="{:.4g}") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float) and not math.isfinite(v):
        return "—"
    return fmt.format(v) if isinstance(v, (int, float)) else str(v)


def format_table(config: dict, metrics: dict, components: list, wall_s: float, device: str) -> str:
    """The rows the experiment is judged on: closed-form agreement, rates vs theory, Lemma 2 / eq. 45 checks."""
    cfg, m = config, metrics
    rows = [("layer / experiment", f"{cfg['layer']} / {cfg['experiment']}, T = {cfg['length']}, j = {cfg['j']}, "
                                   f"seed = {cfg['seed']}")]
    if "max_rel_err_state" in m:
        rows.append(("max rel. err. autograd vs closed form (35-38), state", f"{m['max_rel_err_state']:.3e}"))
    if "max_rel_err_output" in m:
        rows.append(("max rel. err. autograd vs closed form, output y", f"{m['max_rel_err_output']:.3e}"))
    if cfg["experiment"] == "decay" and cfg["layer"] == "attention":
        rows += [("max rel. err. autograd vs closed form (44), j < t", f"{m['max_rel_err']:.3e}"),
                 ("bound (45): max ‖J‖ / (C/t · 1/min e^s)", f"{m['max_ratio_to_bound']:.4g} "
                                                           f"(holds: {_g(m['bound_holds'])}, C = {m['bound_C']:.4g})"),
                 ("power-law decay t^-p: fitted p vs bound", f"{_g(m['power_fit'])} vs {m['power_theory']:g}")]
    elif cfg["experiment"] == "decay":
        rows += [("rate fit vs λ·mean Δ: max rel. deviation", _g(m["rate_rel_dev_max"], "{:.3e}")),
                 ("λ fit against Δ-time vs λ: max rel. deviation", _g(m["lambda_rel_dev_max"], "{:.3e}")),
                 ("states fitted", f"{m['components_fitted']} of {m['components']}")]
    elif cfg["experiment"] == "lemma2":
        rows += [("c = λ Σ_r Δ_r (12)", f"{m['c']:.4g}  (after j: {m['c_after_j']:.4g})"),
                 ("bound e^-c·|∂(BΔx)/∂x_j| (13)", f"{m['bound']:.4g}"),
                 ("min_t |∂h_t/∂x_j| / bound", f"{m['min_ratio']:.4g}  (holds: {_g(m['bound_holds'])})"),
                 ("retention at T: S6 vs S4D (same λ)", f"{m['retention_final']:.4g} vs {m['s4d_retention_final']:.3g}"),
                 ("S4D first below the bound at t", _g(m["s4d_first_below_bound"]))]
    else:
        rows += [("‖∂h_T/∂x_n‖ (kept token)", f"{m['kept_sensitivity']:.4g}"),
                 ("max_j≠n ‖∂h_T/∂x_j‖ / kept", f"{m['max_other_over_kept']:.3g}  (earlier {m['max_earlier_over_kept']:.3g}, "
                                                f"later {m['max_later_over_kept']:.3g})"),
                 ("mean e^-λΔ_t: t ≤ n | t > n", f"{m['mean_e_decay_up_to_n']:.3g} | {_g(m['mean_e_decay_after_n'])}"),
                 (f"S4D (λ = {m['s4d_lambda']:.3g}): min other / kept", f"{m['s4d_min_other_over_kept']:.4g}")]
    rows.append(("wall time", f"{wall_s:.2f} s on {device}"))
    width = max(len(k) for k, _ in rows)
    out = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    if components:
        head = f"{'d':>3} {'n':>3} {'λ':>9} {'mean Δ':>9} {'rate theory':>12} {'rate fit':>12} {'rel dev':>9} {'λ fit':>9}"
        lines = [head]
        for c in components[:MAX_COMPONENTS]:
            fit, th = c["rate_fit"], c["rate_theory"]
            dev = abs(fit - th) / th if fit is not None and th else None
            lines.append(f"{c['d']:>3} {c['n']:>3} {c['lambda']:>9.4g} {_g(c['mean_delta']):>9} "
                         f"{_g(th, '{:.5g}'):>12} {_g(fit, '{:.5g}'):>12} {_g(dev, '{:.2e}'):>9} "
                         f"{_g(c['lambda_fit'], '{:.5g}'):>9}")
        if len(components) > MAX_COMPONENTS:
            lines.append(f"... {len(components) - MAX_COMPONENTS} more states (--json lists all)")
        out += "\n\nper state (rates per step, fitted on log|∂h_t/∂x_j| against t − j):\n" + "\n".join(lines)
    return out


@click.command("sensitivity")
@click.option("--layer", type=click.Choice(LAYERS), default="s6", show_default=True,
              help="Layer: S4D (eq. 6), S6 (eq. 7), Mamba-2 (kernel-1 convs), Mamba-Δ⊤ (eq. 15), softmax attention.")
@click.option("--experiment", type=click.Choice(EXPERIMENTS), default="decay", show_default=True,
              help="decay: Lemma 1 (any layer); lemma2: Δ→0 after j (s6, mamba2); forgetting: KEEP n-TH (s6).")
@click.option("--length", "-T", type=int, default=64, show_default=True, help="Sequence length T ≥ 1.")
@click.option("--d", type=int, default=2, show_default=True, help="Channels of the random layer / attention width.")
@click.option("--n", type=int, default=4, show_default=True, help="State size N of the random layer.")
@click.option("--j", type=int, default=None,
              help="Input position (1-based); default 1 (decay), T//4 (lemma2), min(5, T) = the n of KEEP n-TH.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights and the input.")
@click.option("--weights", type=str, default=None, help="A .pt state dict for the layer (decay only).")
@click.option("--scale", type=float, default=0.3, show_default=True, help="Attention weight scale (N(0, s²/d)).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto = CUDA when available (Triton scan, float64), else CPU.")
@click.option("--backend", type=click.Choice(["auto", "reference", "triton"]), default="auto", show_default=True,
              help="Scan backend: auto = Triton on CUDA, the PyTorch reference otherwise.")
@click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON.")
@click.option("--plot", type=str, default=None, help="Write heat map, decay curves and histogram (.png or .svg).")
def sensitivity(layer, experiment, length, d, n, j, seed, weights, scale, device, backend, as_json, plot):
    """Sensitivity |∂h_t/∂x_j| by autograd through the scan, checked against the closed form of App. B."""
    if plot is not None:
        from approx.plots import check_plot_path

        check_plot_path(plot)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    result = run_sensitivity(layer=layer, experiment=experiment, length=length, d=d, n=n, j=j, seed=seed,
                             weights=weights, device=dev, backend=backend, scale=scale, progress=True)
    wall = time.perf_counter() - t0
    record = make_record(result["config"], result["metrics"], seed=seed, device=dev, wall_s=wall,
                         components=result["components"])
    if plot is not None:
        from approx.plots_sensitivity import plot_sensitivity

        cfg = result["config"]
        plot_sensitivity(result["series"], plot, title=f"{cfg['layer']} / {cfg['experiment']}, T = {cfg['length']}, "
                                                     f"j = {cfg['j']}")
    if as_json:
        click.echo(to_json(record))
    else:
        click.echo(format_table(result["config"], result["metrics"], result["components"], wall, record["device"]))
