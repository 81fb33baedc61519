"""Run a list of training runs as ensemble groups, with the store, checkpoints, resume and sharding (§6).

:func:`run_sweep` reads the runs already in the store, groups the rest (:func:`ssm.training.runs.group_runs`),
trains this process's share of the groups (every group when not under torchrun), and for each group:

- resumes from the group's checkpoint when the store holds one (a killed sweep continues where it stopped; the
  result equals an uninterrupted run's bit for bit on the same device);
- checkpoints into the store every ``checkpoint_every`` seconds and on Ctrl-C (one atomic SQLite transaction);
- writes its members' records and deletes its checkpoint in one transaction when it finishes.

A member's record (``kind = "train"``) holds ``metrics`` (test ``accuracy`` and ``loss``, final validation loss,
``epochs`` trained or epochs to the early stop, ``stopped``, ``plateaued``, ``parameters``, ``steps``), the one-line recipe
deviation, its group and shard; its arrays hold the learning curves (``curve.*``, one value per epoch, NaN after
the stop) and the trained weights (``weights.*``), which :mod:`ssm.training.fig1` reads back.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from tqdm import tqdm

from approx.records import make_record
from approx.store import Store
from kernels import resolve_device

from ..models import build
from . import distributed
from .data import GroupData
from .ensemble import CURVES, EnsembleTrainer
from .recipe import deviation
from .runs import MAX_MEMBERS, group_runs


def _save(trainer) -> bytes:
    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    return buf.getvalue()


def _load(blob: bytes) -> dict:
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


def train_group(group, *, device, dtype=torch.float32, graph="auto", db=None, checkpoint_every=300.0,
                progress=True, shard=(0, 1)) -> list:
    """Train one :class:`ssm.training.runs.Group`; return ``[(config, record, arrays)]`` per member (and write
    them to ``db`` when given)."""
    runs, recipe = group.runs, group.recipe
    task = runs[0].task
    data = GroupData([r.task for r in runs], recipe, device=device)
    model = build(runs[0].model, vocab_size=task.vocab_size, num_classes=task.num_classes, length=data.length)
    trainer = EnsembleTrainer(model, data, recipe, [r.seed for r in runs], lrs=[r.recipe.lr for r in runs],
                              device=device, dtype=dtype, graph=graph)
    resumed = None
    if db is not None:
        found = db.get_checkpoint(group.config())
        if found is not None:
            trainer.load_state_dict(_load(found[0]))
            resumed = found[1]
    steps_left = recipe.total_steps - trainer.epoch * recipe.steps_per_epoch - trainer.step_in_epoch
    bar = tqdm(total=steps_left, desc=group.describe(), unit="step", disable=None if progress else True,
               leave=False)

    def on_epoch(t):
        last = {k: np.array(v[-1], dtype=float) for k, v in t.history.items()}
        alive = ~np.isnan(last["val_loss"])
        if alive.any():
            bar.set_postfix(epoch=t.epoch, loss=f"{np.nanmean(last['train_loss']):.3g}",
                            val_acc=f"{np.nanmean(last['val_acc']):.3f}", stopped=f"{int((~alive).sum())}/{t.members}")

    def checkpoint(t):
        db.put_checkpoint(group.config(), _save(t), {"epoch": t.epoch, "step": t.step_in_epoch,
                                                     "members": t.members, "describe": group.describe()})

    try:
        trainer.train(on_step=lambda t: bar.update(1), on_epoch=on_epoch,
                      checkpoint=None if db is None else checkpoint, checkpoint_every=checkpoint_every)
    finally:
        bar.close()
    test_loss, test_acc = trainer.evaluate("test")
    val_loss, _ = trainer.evaluate("val")
    epochs, steps = trainer.epochs_trained(), trainer.adam.steps.tolist()
    stopped, plateaued = trainer.stop_epoch.tolist(), trainer.plateau_epoch.tolist()
    out = []
    for i, run in enumerate(runs):
        config = run.config()
        metrics = {"accuracy": float(test_acc[i]), "loss": float(test_loss[i]), "val_loss": float(val_loss[i]),
                   "epochs": epochs[i], "stopped": bool(stopped[i]), "plateaued": bool(plateaued[i]),
                   "steps": int(steps[i]),
                   "parameters": model.parameters(run.task.length)}
        record = make_record(config, metrics, seed=run.seed, device=device, wall_s=trainer.wall_s,
                             recipe_deviation=deviation(run.recipe),
                             group={"key": Store.key(group.config()), "members": len(runs),
                                    "resumed_from": resumed}, shard={"rank": shard[0], "world": shard[1]})
        arrays = {f"curve.{k}": np.array([row[i] for row in trainer.history[k]], dtype=np.float64) for k in CURVES}
        arrays.update({f"weights.{k}": v[i].detach().cpu().numpy() for k, v in trainer.params.items()})
        out.append((config, record, arrays))
    if db is not None:
        db.finish(out, checkpoint=group.config())
    return out


def run_sweep(runs, *, store=None, device="auto", dtype=torch.float32, graph="auto", checkpoint_every=300.0,
              max_members: int = MAX_MEMBERS, progress: bool = True) -> list:
    """Train (or read back) ``runs``; return one ``{"record", "arrays", "reused"}`` per run, in order.

    Parameters
    ----------
    runs : :class:`ssm.training.runs.Run` list.
    store : a path or :class:`approx.store.Store`; None keeps nothing (no reuse, no checkpoints).
    device : ``"auto"``, ``"cpu"``, ``"cuda"`` (under torchrun each process takes ``cuda:LOCAL_RANK``).
    graph : capture the step in a CUDA graph (``"auto"``: on CUDA).
    checkpoint_every : seconds between checkpoints of a group in progress.
    max_members : the largest ensemble trained in one step.
    progress : show tqdm bars on a terminal.
    """
    runs = list(runs)
    dev = resolve_device(device)
    rank, world, dev = distributed.init(dev)
    if world > 1 and store is None:
        raise ValueError("a sweep sharded over several processes needs a store (drop --no-store)")
    own = store is not None and not isinstance(store, Store)
    db = Store(store) if own else store
    try:
        done = {}
        if db is not None:
            for r in runs:
                hit = db.get(r.config())
                if hit is not None:
                    done[r.key] = {"record": hit[0], "arrays": hit[1], "reused": True}
        groups = group_runs([r for r in runs if r.key not in done], max_members)
        mine = [g for i, g in enumerate(groups) if i % world == rank]
        for g in tqdm(mine, desc="groups", unit="group", disable=None if progress and len(mine) > 1 else True,
                      leave=False):
            for config, record, arrays in train_group(g, device=dev, dtype=dtype, graph=graph, db=db,
                                                      checkpoint_every=checkpoint_every, progress=progress,
                                                      shard=(rank, world)):
                done[record["key"]] = {"record": record, "arrays": arrays, "reused": False}
        distributed.finish()
        if world > 1:
            for r in runs:
                if r.key not in done:
                    rec, arrays = db.get(r.config())
                    done[r.key] = {"record": rec, "arrays": arrays, "reused": False}
        return [done[r.key] for r in runs]
    finally:
        if own:
            db.close()


def stored(runs, store) -> list:
    """For each run, whether the store at ``store`` holds its record (nothing is trained; a missing file holds
    nothing)."""
    from pathlib import Path

    if not Path(store).is_file():
        return [False] * len(runs)
    with Store(store) as db:
        return [db.get(r.config()) is not None for r in runs]


def summarise(results) -> dict:
    """Mean and standard error over seeds of accuracy, and the mean epochs, of a list of run results."""
    acc = [r["record"]["metrics"]["accuracy"] for r in results]
    epochs = [r["record"]["metrics"]["epochs"] for r in results]
    n = len(acc)
    mean = sum(acc) / n
    se = math.sqrt(sum((a - mean) ** 2 for a in acc) / (n - 1) / n) if n > 1 else 0.0
    return {"accuracy": mean, "se": se, "epochs": sum(epochs) / n, "seeds": n}
