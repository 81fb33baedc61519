"""Training runs, the ensemble groups they share, and the records they leave (docs/design.md §6).

A :class:`Run` is one member: a task config, a model config, a recipe and a seed. Its configuration dictionary
(``kind = "train"``) keys its record in the store. Runs that share a model shape, a task (apart from T) and a
recipe (apart from the learning rate) train together as one :class:`Group` of up to ``max_members`` members:
seeds, learning rates and sequence lengths vary inside a group (shorter sequences are padded). A group's
configuration (its members' keys, in order) keys its checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from approx.records import config_hash
from signals.tasks import task_from_dict

from ..models import build, model_from_dict
from .recipe import Recipe

MAX_MEMBERS = 64


@dataclass(frozen=True)
class Run:
    """One trained model: ``task`` and ``model`` configs, ``recipe``, ``seed`` (initialisation and batch order)."""

    task: object
    model: object
    recipe: Recipe
    seed: int

    def config(self) -> dict:
        """The configuration that keys the run's record."""
        return {"kind": "train", "task": self.task.to_dict(), "model": self.model.to_dict(),
                "recipe": self.recipe.to_dict(), "seed": self.seed}

    @property
    def key(self) -> str:
        return config_hash(self.config())

    def shape_key(self) -> str:
        """What members of one group must share: the model, the task without T, the recipe without lr."""
        task = {k: v for k, v in self.task.to_dict().items() if k != "length"}
        recipe = {k: v for k, v in self.recipe.to_dict().items() if k != "lr"}
        return json.dumps({"task": task, "model": self.model.to_dict(), "recipe": recipe}, sort_keys=True)

    def describe(self) -> str:
        return f"{self.model.describe()}, {self.task.describe()}, seed {self.seed}"


def run_from_config(config: dict) -> Run:
    """The run a stored configuration describes."""
    return Run(task_from_dict(config["task"]), model_from_dict(config["model"]), Recipe(**config["recipe"]),
               config["seed"])


def trained_model(run: Run, arrays: dict, *, device=None, dtype=torch.float64) -> tuple:
    """``(model, params)`` of a stored run: its stacked model for the run's task and its trained weights
    (``arrays["weights.*"]``) as a one-member ensemble, name → (1, *shape) on ``device``."""
    task = run.task
    model = build(run.model, vocab_size=task.vocab_size, num_classes=task.num_classes, length=task.length)
    params = {k: torch.as_tensor(arrays[f"weights.{k}"], dtype=dtype, device=device)[None] for k in model.shapes()}
    return model, params


def load_trained(store, key: str, *, device=None) -> tuple:
    """``(run, model, params)`` of the trained run stored under ``key`` in the store at ``store`` (a path); a
    ValueError naming the key when the store holds no trained run under it."""
    from pathlib import Path

    from approx.store import Store

    if not Path(store).is_file():
        raise ValueError(f"store {str(store)!r} does not exist")
    with Store(store) as db:
        found = db.get_key(key)
    if found is None or found[0].get("kind") != "train":
        raise ValueError(f"store {str(store)!r} holds no trained run with key {key!r} (approx train --json lists "
                         f"its runs' keys)")
    run = run_from_config(found[0])
    return (run, *trained_model(run, found[2], device=device))


@dataclass(frozen=True)
class Group:
    """Runs trained together in one ensemble (same model shape, task family and recipe but the lr)."""

    runs: tuple

    def config(self) -> dict:
        """Keys the group's checkpoint: its members, in order."""
        return {"kind": "train-group", "members": [r.key for r in self.runs]}

    @property
    def recipe(self) -> Recipe:
        """The shared recipe (each member's own lr is passed to the trainer separately)."""
        return self.runs[0].recipe

    def describe(self) -> str:
        lengths = sorted({r.task.length for r in self.runs})
        return f"{self.runs[0].model.describe()}, T ∈ {lengths}, {len(self.runs)} members"


def group_runs(runs, max_members: int = MAX_MEMBERS) -> list:
    """Runs sorted into groups: by shape, then by (T, lr, seed) within a shape, at most ``max_members`` per group.
    The order depends only on the runs, so every process of a sharded sweep forms the same groups."""
    by_shape = {}
    for r in dict.fromkeys(runs):
        by_shape.setdefault(r.shape_key(), []).append(r)
    groups = []
    for shape in sorted(by_shape):
        members = sorted(by_shape[shape], key=lambda r: (r.task.length, r.recipe.lr, r.seed))
        groups += [Group(tuple(members[i:i + max_members])) for i in range(0, len(members), max_members)]
    return groups
