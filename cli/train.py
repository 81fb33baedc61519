"""``approx train``: train one model on a token task, several seeds as one ensemble, and print the result.

The options shared with ``approx reproduce`` (the recipe, the store, the device) are defined here once.
"""
from __future__ import annotations

import functools
import re
import time

import click

from approx.records import make_record, to_json
from approx.store import DEFAULT_PATH
from signals.tasks import TASKS, make_task
from ssm.models import MODELS, make_model_config, task_defaults
from ssm.training import distributed
from ssm.training.recipe import SCHEDULES, describe, deviation
from ssm.training.reproduce import RECIPES
from ssm.training.runs import Run
from ssm.training.sweep import run_sweep, summarise

from .rates import check_output_path, expand_variadic

#: Python argument names whose option is spelled differently
OPTION_NAMES = {"N": "--n", "nth": "--nth", "n": "--nth", "length": "--length", "d": "--d", "vocab": "--vocab",
                "kappa": "--kappa", "heads": "--heads", "pe_scale": "--pe-scale", "positions": "--positions",
                "conv": "--conv", "gate": "--gate", "keys": "--keys", "hard_prob": "--hard-prob",
                "input_delta": "--input-delta"}


def option_errors(fn):
    """Re-raise a library ValueError that names a Python argument with the option's name instead."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            msg = str(e)
            m = re.match(r"(\w+) ", msg)
            if m and (m.group(1) in OPTION_NAMES or m.group(1) in RECIPE_FIELDS):
                name = m.group(1)
                msg = OPTION_NAMES.get(name, "--" + name.replace("_", "-")) + msg[len(name):]
            raise ValueError(msg) from None
    return wrapper


RECIPE_FIELDS = ("epochs", "batch_size", "lr", "lr_min", "schedule", "train_size", "val_size", "test_size",
                 "stop_loss", "data_seed", "patience", "min_gain")


class VariadicCommand(click.Command):
    """A command whose ``variadic`` options take several space-separated values (``--lengths 10 50``)."""

    variadic = ("--lr",)

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, expand_variadic(args, self.variadic))


def recipe_options(default: str):
    """The recipe, seeds, store and device options (``default``: the named recipe the command starts from)."""
    opts = [
        click.option("--recipe", "recipe_name", type=click.Choice(list(RECIPES)), default=default, show_default=True,
                     help="Start from App. D.1's recipe (paper) or the reduced one of `reproduce` (budget: 50 "
                          "epochs of 10⁴ sequences at lr 0.01); the options below override it."),
        click.option("--epochs", type=int, default=None, help="Epochs (paper 600)."),
        click.option("--batch-size", type=int, default=None, help="Batch size (paper 16)."),
        click.option("--lr", type=float, multiple=True,
                     help="Initial learning rate (paper 0.03); several after one flag train one member per "
                          "learning rate and seed."),
        click.option("--lr-min", type=float, default=None, help="Final learning rate of the cosine (paper 1e-6)."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=None,
                     help="Step the cosine once per epoch (the lab's default) or per optimizer step."),
        click.option("--train-size", type=int, default=None, help="Training sequences (paper 100000)."),
        click.option("--val-size", type=int, default=None, help="Validation sequences (paper 1000)."),
        click.option("--test-size", type=int, default=None, help="Test sequences (paper 100000)."),
        click.option("--stop-loss", type=float, default=None, help="Early stop below this validation loss (1e-6)."),
        click.option("--data-seed", type=int, default=None, help="Seed of the data sets (train 3s+1, val 3s+2, "
                                                                 "test 3s+3; default 0)."),
        click.option("--patience", type=int, default=None,
                     help="Stop a member after this many epochs without a validation-accuracy gain of --min-gain "
                          "(0: never; the paper has no such stop; the figures default to 10)."),
        click.option("--min-gain", type=float, default=None, help="The gain --patience waits for (0.01)."),
        click.option("--seeds", type=int, default=3, show_default=True, help="Number of seeds (members) per model."),
        click.option("--seed", type=int, default=0, show_default=True, help="First seed (seeds seed..seed+k−1)."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--store", type=click.Path(), default=DEFAULT_PATH, show_default=True,
                     help="SQLite store: finished runs are reused, a killed run resumes from its checkpoint."),
        click.option("--no-store", is_flag=True, default=False, help="Keep nothing (no store, no checkpoints)."),
        click.option("--checkpoint-every", type=float, default=300.0, show_default=True,
                     help="Seconds between checkpoints of a run in progress."),
        click.option("--concurrent", type=int, default=1, show_default=True,
                     help="Ensemble groups trained at once in a process, interleaved step by step (on a GPU each "
                          "on its own CUDA stream, so that small ensembles share it)."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr."),
        click.option("--json", "as_json", is_flag=True, default=False, help="Print the record as JSON."),
        click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a plot (.png or .svg)."),
    ]

    def decorate(fn):
        for o in reversed(opts):
            fn = o(fn)
        return fn
    return decorate


def make_recipe(recipe_name, **knobs):
    """The named recipe with the given knobs (None: unchanged); ``lr`` is the first of the --lr values."""
    lrs = list(knobs.pop("lr") or ())
    recipe = RECIPES[recipe_name].replace(lr=lrs[0] if lrs else None, **knobs)
    return recipe, lrs or [recipe.lr]


def seed_list(seeds: int, seed: int) -> list:
    if seeds < 1:
        raise ValueError(f"--seeds must be an integer ≥ 1, got {seeds}")
    if seed < 0:
        raise ValueError(f"--seed must be an integer ≥ 0, got {seed}")
    return list(range(seed, seed + seeds))


def check_plot(plot):
    if plot is not None:
        from approx.plots import check_plot_path
        check_plot_path(plot)
        check_output_path("--plot", plot, (".png", ".svg"))


def fields_given(fields: dict) -> dict:
    """The fields a user set (None: left to the model's or the task's default)."""
    return {k: v for k, v in fields.items() if v is not None}


def format_train(record: dict) -> str:
    """The final table of ``approx train``: one line per member, the mean over seeds, the recipe."""
    cfg, met = record["config"], record["metrics"]
    lines = [f"task      {cfg['task_line']}", f"model     {cfg['model_line']}, {met['parameters']} parameters",
             f"recipe    {cfg['recipe_line']}", f"          {record['recipe_deviation'] or 'recipe: App. D.1'}",
             "",
             f"{'seed':>4}  {'lr':>8}  {'test acc.':>9}  {'test loss':>10}  {'epochs':>6}  {'stop':>10}  "
             f"{'steps':>8}  {'run':>10}"]
    for r in met["runs"]:
        stop = "yes" if r["stopped"] else "plateau" if r.get("plateaued") else "no"
        origin = "stored" if r["reused"] else "trained"
        lines.append(f"{r['seed']:>4}  {r['lr']:>8.3g}  {r['accuracy']:>9.4f}  {r['loss']:>10.3e}  {r['epochs']:>6}  "
                     f"{stop:>10}  {r['steps']:>8}  {origin:>10}")
    se = "" if met["seeds"] < 2 else f" (s.e. {met['accuracy_se']:.2f} over {met['seeds']} runs)"
    lines += ["", f"test accuracy {met['accuracy']:.4f}{se}, mean epochs {met['epochs']:.1f}, "
                  f"solved (≥ 0.95): {'yes' if met['accuracy'] >= 0.95 else 'no'}; wall {record['wall_s']:.1f} s "
                  f"on {record['device']}"]
    return "\n".join(lines)


@click.command("train", cls=VariadicCommand,
               short_help="Train a model on a token task, seeds as one ensemble; print test accuracy.")
@click.argument("task", type=click.Choice(TASKS), metavar="TASK")
@click.option("--model", type=click.Choice(list(MODELS)), default="mamba", show_default=True,
              help="mamba (S6), s4d, transformer (1 layer, learned PE); mamba2, mamba-s4d (gated S4D block), "
                   "mamba-dt (Mamba-Δ⊤, eq. 15).")
@click.option("--pe", is_flag=True, default=False, help="Position in the last embedding element (mamba, s4d).")
@click.option("--pe-scale", type=click.Choice(["t/T", "t"]), default=None,
              help="Value of the position element: t/T (default) or the index t.")
@click.option("--d", type=int, default=None, help="Embedding size d (mamba/s4d default 32, transformer 16).")
@click.option("--n", "N", type=int, default=None, help="State size N (SSMs; default 8).")
@click.option("--conv", type=int, default=None,
              help="Kernel of the block's causal convolution, 0 = none (SSMs; default 0 on keep-nth, 4 on mqar "
                   "and induction).")
@click.option("--gate/--no-gate", default=None, help="The block's gate (eq. 14g; default: on for mamba-s4d only).")
@click.option("--input-delta", is_flag=True, default=None,
              help="mamba-dt: keep Δ on the input term (eq. 15 has none; the default follows eq. 15).")
@click.option("--heads", type=int, default=None, help="Attention heads (transformer; default 1).")
@click.option("--length", type=int, default=None, help="Sequence length T (keep-nth 50, mqar and induction 100).")
@click.option("--nth", type=int, default=None, help="n of KEEP n-TH (default 5).")
@click.option("--vocab", type=int, default=None, help="|V| (keep-nth 128, mqar 128 values, induction 20).")
@click.option("--positions", type=click.Choice(["from-n", "after-n", "all", "repeat", "hard"]), default=None,
              help="Positions scored. keep-nth: from-n (t = n..T, App. D.2, default) or after-n; induction: all "
                   "(default), repeat (a previous occurrence) or hard (T − r of hard sequences).")
@click.option("--kappa", type=int, default=None, help="κ of MQAR (default 8).")
@click.option("--keys", type=click.Choice(["distinct", "iid"]), default=None,
              help="MQAR keys: distinct (default) or iid (App. D.3; a repeated key answers its latest value).")
@click.option("--hard-prob", type=float, default=None, help="INDUCTION HEADS: share of hard sequences (0.75).")
@recipe_options("paper")
@option_errors
def train(task, model, pe, pe_scale, d, N, conv, gate, input_delta, heads, length, nth, vocab, positions, kappa, keys,
          hard_prob, recipe_name, epochs, batch_size, lr, lr_min, schedule, train_size, val_size, test_size, stop_loss,
          data_seed, patience, min_gain, seeds, seed, device, store, no_store, checkpoint_every, concurrent, progress, as_json, plot):
    """Train MODEL on TASK with App. D.1's recipe (every knob overridable), one member per seed and learning
    rate, and print each member's test accuracy, loss and epochs to the early stop.

    Examples: approx train keep-nth --model mamba --pe --d 32 --n 8 --length 50 --seeds 3;
    approx train mqar --model mamba2 --kappa 8 --d 64 --n 17; approx train induction --model mamba-dt --vocab 10 --d 32
    """
    check_plot(plot)
    start = time.perf_counter()
    task_cfg = make_task(task, length=length, nth=nth, vocab=vocab, positions=positions, kappa=kappa, keys=keys,
                         hard_prob=hard_prob)
    fields = {"d": d, "N": N, "pe": pe or None, "pe_scale": pe_scale, "heads": heads, "conv": conv, "gate": gate,
              "input_delta": input_delta or None}
    model_cfg = make_model_config(model, **{**task_defaults(task, model), **fields_given(fields)})
    recipe, lrs = make_recipe(recipe_name, epochs=epochs, batch_size=batch_size, lr=lr, lr_min=lr_min,
                              schedule=schedule, train_size=train_size, val_size=val_size, test_size=test_size,
                              stop_loss=stop_loss, data_seed=data_seed, patience=patience, min_gain=min_gain)
    runs = [Run(task_cfg, model_cfg, recipe.replace(lr=x), s) for x in lrs for s in seed_list(seeds, seed)]
    results = run_sweep(runs, store=None if no_store else store, device=device, checkpoint_every=checkpoint_every,
                        concurrent=concurrent, progress=progress)
    if not distributed.is_main():
        return
    summary = summarise(results)
    per_run = [{"seed": r.seed, "lr": r.recipe.lr, "key": res["record"]["key"], "reused": res["reused"],
                **{k: res["record"]["metrics"][k] for k in ("accuracy", "loss", "epochs", "stopped", "steps")},
                "plateaued": res["record"]["metrics"].get("plateaued", False)}
               for r, res in zip(runs, results)]
    config = {"kind": "train-command", "task": task_cfg.to_dict(), "model": model_cfg.to_dict(),
              "recipe": recipe.to_dict(), "lrs": lrs, "seeds": seed_list(seeds, seed),
              "task_line": task_cfg.describe(), "model_line": model_cfg.describe(), "recipe_line": describe(recipe)}
    metrics = {"parameters": results[0]["record"]["metrics"]["parameters"], "accuracy": summary["accuracy"],
               "accuracy_se": summary["se"], "epochs": summary["epochs"], "seeds": summary["seeds"], "runs": per_run}
    record = make_record(config, metrics, seed=config["seeds"], device=distributed.device(device),
                         wall_s=time.perf_counter() - start, recipe_deviation=deviation(recipe))
    if plot is not None:
        from approx.plots_training import plot_learning_curves
        curves = [{"label": f"seed {r.seed}, lr {r.recipe.lr:g}",
                   **{k: res["arrays"][f"curve.{k}"] for k in ("train_loss", "val_loss", "val_acc")}}
                  for r, res in zip(runs, results)]
        plot_learning_curves(curves, plot, title=f"{model_cfg.describe()} on {task_cfg.describe()}")
    click.echo(to_json(record) if as_json else format_train(record))
