"""``approx construct``: build one of the paper's exact 1-layer constructions and measure its accuracy."""
from __future__ import annotations

import time

import click

from approx.plots import check_plot_path
from approx.store import DEFAULT_PATH
from approx.records import make_record, to_json
from kernels import resolve_device
from ssm.constructions.mqar import VARIANTS
from ssm.evaluate import CONSTRUCTION_TASKS, evaluate_construction
from ssm.training.runs import load_trained

from .options import given


def format_table(record: dict) -> str:
    """Accuracy over the scored positions and the model's size beside the paper's stated size."""
    cfg, met, size, bound = record["config"], record["metrics"], record["sizes"], record["bound"]
    setting = {"keep-nth": lambda: f"KEEP n-TH, n = {cfg['nth']}" + (", compressed" if cfg.get("compressed") else ""),
               "induction": lambda: "INDUCTION HEADS, " + ("hard" if cfg.get("hard") else "standard") + " setting",
               "mqar": lambda: f"MQAR, κ = {cfg['kappa']}, {cfg['variant']}" + (", compressed" if cfg["compressed"] else "")}
    source = f"file {cfg['data']}" if cfg.get("data") else f"generated, seed {record['seed']}"
    paper = lambda v: "—" if v is None else str(v)
    rows = [("task", setting[cfg["task"]]()),
            ("data", f"{cfg['samples']} sequences of T = {cfg['length']}, |V| = {cfg['vocab']} ({source})"),
            ("accuracy", f"{met['accuracy']:.6f}  ({met['correct']}/{met['scored']} scored positions)"),
            ("sequences all right", f"{met['sequences_all_correct']:.6f}"),
            ("model d, N", f"{size['d']}, {size['N']}   (paper: d = {paper(bound.get('d'))}, "
                           f"N = {paper(bound.get('N'))}; {bound.get('source', '')})"),
            ("parameters", str(size["parameters"]))]
    t = record.get("trained")
    if t is not None:
        m = t["metrics"]
        rows += [("trained run", f"{t['key']}: {t['model']}, {t['parameters']} parameters"),
                 ("trained accuracy", f"{m['accuracy']:.6f}  ({m['correct']}/{m['scored']} scored positions; "
                                      f"sequences all right {m['sequences_all_correct']:.6f})")]
    rows.append(("wall time", f"{record['wall_s']:.3f} s on {record['device']}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


@click.command("construct")
@click.argument("task", type=click.Choice(CONSTRUCTION_TASKS), metavar="TASK")
@click.option("--vocab", type=int, default=None, help="|V| (default: keep-nth 128, induction 20, mqar 128).")
@click.option("--length", type=int, default=None, help="Sequence length T (default: keep-nth 50, others 100).")
@click.option("--nth", type=int, default=None, help="n of KEEP n-TH (default 5).")
@click.option("--kappa", type=int, default=None, help="Number of key-value pairs κ of MQAR (default 8).")
@click.option("--variant", type=click.Choice(VARIANTS), default=None,
              help="MQAR architecture: mamba (Thm. 2, default), mamba2 (Thm. 3), s4d (Thm. 4).")
@click.option("--hard", is_flag=True, help="INDUCTION HEADS in the hard setting (App. D.4) for every sequence.")
@click.option("--compressed", is_flag=True, help="The compressed construction (keep-nth: d = 3; mqar: JL).")
@click.option("--d", "d", type=int, default=None, help="Embedding size (default: the construction's smallest).")
@click.option("--n", "N", type=int, default=None, help="State size N (default: the smallest).")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="A .npz file with arrays inputs, targets, mask (S, T) to evaluate on instead of generated data.")
@click.option("--samples", type=int, default=1000, show_default=True,
              help="Number of generated sequences (docs/constructions.md reports 10000).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON.")
@click.option("--plot", type=str, default=None, help="Write the accuracy at each position t (.png or .svg).")
@click.option("--trained", type=str, default=None,
              help="Also score the trained run with this key (approx train --json lists the keys) on the same "
                   "sequences; |V|, T, n or κ default to its task's.")
@click.option("--store", type=click.Path(dir_okay=False), default=DEFAULT_PATH, show_default=True,
              help="The store holding the --trained run.")
def construct(task, vocab, length, nth, kappa, variant, hard, compressed, d, N, data, samples, seed, device, as_json,
              plot, trained, store):
    """Build the exact construction for TASK (keep-nth, mqar or induction) and print its accuracy over the scored
    positions.

    keep-nth: S6 with positional encoding (Cor. 2). induction: Mamba-Δ⊤ (Lemma 3), --hard for the hard
    setting. mqar: Mamba without gate (Thm. 2), or --variant mamba2 (Thm. 3) / s4d (Thm. 4), --compressed for
    their Johnson-Lindenstrauss step. The model size (d, N, parameters) is printed beside the paper's.
    """
    if plot is not None:
        check_plot_path(plot)
    start = time.perf_counter()
    dev = resolve_device(device)
    if trained is None and given(click.get_current_context(), "store"):
        raise ValueError("--store has no effect without --trained (it holds the trained run)")
    run = None if trained is None else load_trained(store, trained)
    result = evaluate_construction(task, vocab=vocab, length=length, nth=nth, kappa=kappa, variant=variant,
                                   hard=hard, compressed=compressed, d=d, N=N, data=data, samples=samples, seed=seed,
                                   device=str(dev), trained=run)
    record = make_record(result["config"], result["metrics"], seed=seed, device=dev,
                         wall_s=time.perf_counter() - start, accuracy=result["metrics"]["accuracy"],
                         sizes=result["sizes"], bound=result["bound"],
                         **({"trained": result["trained"]} if "trained" in result else {}))
    if plot is not None:
        from approx.plots_training import plot_accuracy_per_position

        plot_accuracy_per_position(result["metrics"]["per_position"], plot,
                                   title=f"approx construct {task}: accuracy at each scored position")
    click.echo(to_json(record) if as_json else format_table(record))
