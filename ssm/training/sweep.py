"""Run a list of training runs as ensemble groups, with the store, checkpoints, resume and sharding (§6).

:func:`run_sweep` reads the runs already in the store, groups the rest (:func:`ssm.training.runs.group_runs`),
trains this process's share of the groups (every group when not under torchrun; ``concurrent`` of them at once,
interleaved step by step, :func:`train_groups`), and for each group:

- resumes from the group's checkpoint when the store holds one (a killed sweep continues where it stopped; the
  result equals an uninterrupted run's bit for bit on the same device);
- checkpoints into the store every ``checkpoint_every`` seconds and on Ctrl-C (one atomic SQLite transaction);
- writes its members' records and deletes its checkpoint in one transaction when it finishes.

A member's record (``kind = "train"``) holds ``metrics`` (test ``accuracy`` and ``loss``, final validation loss,
``epochs`` trained or epochs to the early or plateau stop, ``stopped``, ``plateaued``, ``parameters``, ``steps``),
the one-line recipe deviation, its group and shard; its arrays hold the learning curves (``curve.*``, one value per
epoch, NaN after the stop) and the trained weights (``weights.*``), which :mod:`ssm.training.fig1` reads back.
"""
from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import torch
from tqdm import tqdm

from approx.records import make_record
from approx.store import Store
from kernels import resolve_device
from signals.checks import check_int

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


class GroupRun:
    """One :class:`ssm.training.runs.Group` in training: its trainer (resumed from the store's checkpoint when it
    holds one), its progress bar, and :attr:`steps`, the trainer's step generator. Built, stepped and finished
    inside :meth:`context` (its CUDA stream when it has one)."""

    def __init__(self, group, *, device, dtype=torch.float32, graph="auto", db=None, checkpoint_every=300.0,
                 progress=True, shard=(0, 1), stream=None):
        self.group, self.device, self.db, self.shard, self.stream = group, device, db, shard, stream
        runs, recipe = group.runs, group.recipe
        task = runs[0].task
        with self.context():
            data = GroupData([r.task for r in runs], recipe, device=device)
            self.model = build(runs[0].model, vocab_size=task.vocab_size, num_classes=task.num_classes,
                               length=data.length)
            self.trainer = EnsembleTrainer(self.model, data, recipe, [r.seed for r in runs],
                                           lrs=[r.recipe.lr for r in runs], device=device, dtype=dtype, graph=graph)
            self.resumed = None
            if db is not None:
                found = db.get_checkpoint(group.config())
                if found is not None:
                    self.trainer.load_state_dict(_load(found[0]))
                    self.resumed = found[1]
        t = self.trainer
        steps_left = recipe.total_steps - t.epoch * recipe.steps_per_epoch - t.step_in_epoch
        self.bar = tqdm(total=steps_left, desc=group.describe(), unit="step", disable=None if progress else True,
                        leave=False)
        self.steps = t.steps(on_step=lambda _: self.bar.update(1), on_epoch=self._on_epoch,
                             checkpoint=None if db is None else self._checkpoint, checkpoint_every=checkpoint_every)

    def context(self):
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def _on_epoch(self, t):
        last = {k: np.array(v[-1], dtype=float) for k, v in t.history.items()}
        alive = ~np.isnan(last["val_loss"])
        if alive.any():
            self.bar.set_postfix(epoch=t.epoch, loss=f"{np.nanmean(last['train_loss']):.3g}",
                                 val_acc=f"{np.nanmean(last['val_acc']):.3f}",
                                 stopped=f"{int((~alive).sum())}/{t.members}")

    def _checkpoint(self, t):
        self.db.put_checkpoint(self.group.config(), _save(t), {"epoch": t.epoch, "step": t.step_in_epoch,
                                                               "members": t.members,
                                                               "describe": self.group.describe()})

    def finish(self) -> list:
        """Test the trained members; return ``[(config, record, arrays)]`` per member (written to the store
        when there is one)."""
        self.bar.close()
        trainer, runs, group = self.trainer, self.group.runs, self.group
        with self.context():
            test_loss, test_acc = trainer.evaluate("test")
            val_loss, _ = trainer.evaluate("val")
            epochs, steps = trainer.epochs_trained(), trainer.adam.steps.tolist()
            stopped, plateaued = trainer.stop_epoch.tolist(), trainer.plateau_epoch.tolist()
            weights = {k: v.detach().cpu().numpy() for k, v in trainer.params.items()}
        out = []
        for i, run in enumerate(runs):
            config = run.config()
            metrics = {"accuracy": float(test_acc[i]), "loss": float(test_loss[i]), "val_loss": float(val_loss[i]),
                       "epochs": epochs[i], "stopped": bool(stopped[i]), "plateaued": bool(plateaued[i]),
                       "steps": int(steps[i]), "parameters": self.model.parameters(run.task.length)}
            record = make_record(config, metrics, seed=run.seed, device=self.device, wall_s=trainer.wall_s,
                                 recipe_deviation=deviation(run.recipe),
                                 group={"key": Store.key(group.config()), "members": len(runs),
                                        "resumed_from": self.resumed},
                                 shard={"rank": self.shard[0], "world": self.shard[1]})
            arrays = {f"curve.{k}": np.array([row[i] for row in trainer.history[k]], dtype=np.float64)
                      for k in CURVES}
            arrays.update({f"weights.{k}": v[i] for k, v in weights.items()})
            out.append((config, record, arrays))
        if self.db is not None:
            self.db.finish(out, checkpoint=group.config())
        return out


def train_groups(groups, *, concurrent: int = 1, device, **options):
    """Train ``groups``, up to ``concurrent`` at once, interleaved step by step; yield one list of ``(config,
    record, arrays)`` per group, its members', as the group finishes; ``options`` as for :class:`GroupRun`.

    On CUDA each live group has its own stream, so the small kernels of several ensembles can run side by side on
    the GPU; elsewhere the interleaving changes nothing but the order (every group ends bit for bit as alone). A
    KeyboardInterrupt checkpoints every live group."""
    pending, live = list(groups), []
    cuda = torch.device(device).type == "cuda"
    try:
        while pending or live:
            while pending and len(live) < concurrent:
                stream = torch.cuda.Stream(device=device) if cuda and concurrent > 1 else None
                live.append(GroupRun(pending.pop(0), device=device, stream=stream, **options))
            for g in list(live):
                with g.context():
                    done = next(g.steps, StopIteration) is StopIteration
                if done:
                    live.remove(g)
                    yield g.finish()
    except KeyboardInterrupt:
        for g in live:
            with g.context():
                try:
                    g.steps.throw(KeyboardInterrupt)
                except (KeyboardInterrupt, StopIteration):
                    pass
        raise


def run_sweep(runs, *, store=None, device="auto", dtype=torch.float32, graph="auto", checkpoint_every=300.0,
              max_members: int = MAX_MEMBERS, concurrent: int = 1, progress: bool = True) -> list:
    """Train (or read back) ``runs``; return one ``{"record", "arrays", "reused"}`` per run, in order.

    Parameters
    ----------
    runs : :class:`ssm.training.runs.Run` list.
    store : a path or :class:`approx.store.Store`; None keeps nothing (no reuse, no checkpoints).
    device : ``"auto"``, ``"cpu"``, ``"cuda"`` (under torchrun each process takes ``cuda:LOCAL_RANK``).
    graph : capture the step in a CUDA graph (``"auto"``: on CUDA).
    checkpoint_every : seconds between checkpoints of a group in progress.
    max_members : the largest ensemble trained in one step.
    concurrent : groups trained at once in this process, interleaved step by step (on CUDA each on its own
        stream; :func:`train_groups`).
    progress : show tqdm bars on a terminal.
    """
    runs = list(runs)
    check_int("concurrent", concurrent, 1)
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
        bar = tqdm(total=len(mine), desc="groups", unit="group", disable=None if progress and len(mine) > 1 else True,
                   leave=False)
        trained = train_groups(mine, concurrent=concurrent, device=dev, dtype=dtype, graph=graph, db=db,
                               checkpoint_every=checkpoint_every, progress=progress, shard=(rank, world))
        for members in trained:
            for config, record, arrays in members:
                done[record["key"]] = {"record": record, "arrays": arrays, "reused": False}
            bar.update(1)
        bar.close()
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
