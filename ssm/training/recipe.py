"""The training recipe: App. D.1 as the default, every knob overridable, deviations said in one line.

App. D.1 (p. 30): Adam, learning rate 0.03 annealed by a cosine to 10⁻⁶, batch 16, 600 epochs of 10⁵ training
sequences, early stop when the validation loss (10³ sequences) falls below 10⁻⁶, accuracy on 10⁵ test sequences
after the last epoch. What the paper leaves open and the lab chooses (not deviations):

- the cosine is stepped once per epoch (``schedule="epoch"``, as PyTorch's CosineAnnealingLR is usually stepped);
  ``"step"`` anneals per optimizer step. Epoch e of E (0-based) trains at lr_min + (lr − lr_min)(1 + cos(πe/E))/2;
- Adam's β₁ = 0.9, β₂ = 0.999, ε = 10⁻⁸ (PyTorch's defaults), no weight decay, no gradient clipping, float32;
- the data seeds: train, validation and test sets are drawn from the fixed, distinct seeds 3s+1, 3s+2, 3s+3 of
  ``data_seed`` s (default 0), the same for every member; a member's seed sets its initialisation and batch order;
- an epoch is ⌊train_size / batch_size⌋ steps over a fresh permutation (the last partial batch is dropped; none
  at the paper's sizes);
- the paper's second stop, six hours of wall-clock time, is not applied: it depends on the hardware, and a
  long run is resumable instead.

One knob the paper does not have (off by default, a deviation when on): ``patience`` P > 0 stops a member whose best
validation accuracy of its last P epochs is below its best before them plus ``min_gain`` — a cap on members that
plateau, for sweeps whose cost is the runs that never solve.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from signals.checks import check_choice, check_float, check_int

SCHEDULES = ("epoch", "step")


@dataclass(frozen=True)
class Recipe:
    """One training recipe (see the module docstring); the defaults are App. D.1's."""

    epochs: int = 600
    batch_size: int = 16
    lr: float = 0.03
    lr_min: float = 1e-6
    schedule: str = "epoch"
    train_size: int = 100_000
    val_size: int = 1_000
    test_size: int = 100_000
    stop_loss: float = 1e-6
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    data_seed: int = 0
    patience: int = 0
    min_gain: float = 0.01

    def __post_init__(self):
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("lr", self.lr, 0.0, low_open=True)
        check_float("lr_min", self.lr_min, 0.0)
        if self.lr_min > self.lr:
            raise ValueError(f"lr_min must not exceed lr={self.lr:g}, got lr_min={self.lr_min:g}")
        check_choice("schedule", self.schedule, SCHEDULES)
        check_int("train_size", self.train_size, 1)
        check_int("val_size", self.val_size, 1)
        check_int("test_size", self.test_size, 1)
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size must not exceed train_size={self.train_size}, got {self.batch_size}")
        check_float("stop_loss", self.stop_loss, 0.0)
        check_float("beta1", self.beta1, 0.0, 1.0, high_open=True)
        check_float("beta2", self.beta2, 0.0, 1.0, high_open=True)
        check_float("eps", self.eps, 0.0, low_open=True)
        check_int("data_seed", self.data_seed, 0)
        check_int("patience", self.patience, 0)
        check_float("min_gain", self.min_gain, 0.0)

    @property
    def steps_per_epoch(self) -> int:
        return self.train_size // self.batch_size

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def data_seeds(self) -> dict:
        """The fixed, distinct seeds of the three splits."""
        s = 3 * self.data_seed
        return {"train": s + 1, "val": s + 2, "test": s + 3}

    def to_dict(self) -> dict:
        """The fields; the plateau knobs only when the plateau stop is on, so that a run without it is keyed by
        the other fields alone."""
        out = dataclasses.asdict(self)
        if not self.patience:
            del out["patience"], out["min_gain"]
        return out

    def replace(self, **changes) -> "Recipe":
        """A copy with ``changes`` (None values ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


PAPER = Recipe()

#: the knobs App. D.1 states, with their names in a deviation line
STATED = {"epochs": "epochs", "batch_size": "batch size", "lr": "lr", "lr_min": "lr min", "train_size": "train size",
          "val_size": "val size", "test_size": "test size", "stop_loss": "stop at val loss <"}


def deviation(recipe: Recipe) -> str:
    """One line saying how ``recipe`` differs from App. D.1 in what the paper states ('' when it does not)."""
    diffs = [f"{label} {getattr(recipe, k):g} (paper {getattr(PAPER, k):g})" for k, label in STATED.items()
             if getattr(recipe, k) != getattr(PAPER, k)]
    if recipe.patience:
        diffs.append(f"stop after {recipe.patience} epochs without a validation-accuracy gain of {recipe.min_gain:g} "
                     f"(paper: no such stop)")
    return "recipe differs from App. D.1: " + ", ".join(diffs) if diffs else ""


def describe(recipe: Recipe) -> str:
    """One line: the recipe's knobs."""
    return (f"Adam lr {recipe.lr:g} → {recipe.lr_min:g} (cosine per {recipe.schedule}), batch {recipe.batch_size}, "
            f"{recipe.epochs} epochs × {recipe.steps_per_epoch} steps, train/val/test "
            f"{recipe.train_size}/{recipe.val_size}/{recipe.test_size}, stop at val loss < {recipe.stop_loss:g}"
            + (f" or after {recipe.patience} epochs without a val. accuracy gain of {recipe.min_gain:g}"
               if recipe.patience else ""))
