"""The task registry: one small frozen config per token task, read by the trainer and the command line.

A task config holds what determines its sequences (T, |V|, the task's own parameters) and knows

- ``vocab_size`` (input tokens) and ``num_classes`` (output logits) for the model;
- ``generate(samples, seed, device)`` → :class:`TaskBatch` of (samples, T) tensors on ``device``;
- ``to_dict()`` → the plain dictionary recorded in a run's configuration (``{"name": …, field: value, …}``).

Adding a task is one new dataclass and one entry in :data:`TASK_CONFIGS`. :func:`make_task` builds a config from
keyword values (unknown names and fields are a ValueError naming them); :func:`task_from_dict` reads a recorded one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ..checks import check_choice, check_float, check_int
from .batch import TaskBatch
from .induction import POSITIONS as INDUCTION_POSITIONS
from .induction import induction_heads
from .keep_nth import POSITIONS, keep_nth
from .latest import TARGETS as LATEST_TARGETS
from .latest import mqar_latest
from .mqar import KEYS as MQAR_KEYS
from .mqar import mqar


class _Task:
    name: ClassVar[str]

    @property
    def vocab_size(self) -> int:
        """Input tokens."""
        return self.vocab

    @property
    def num_classes(self) -> int:
        """Output logits."""
        return self.vocab

    def to_dict(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}

    def describe(self) -> str:
        """One line: the task and its fields."""
        return self.name + " (" + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self).items()) + ")"


@dataclass(frozen=True)
class KeepNthConfig(_Task):
    """KEEP n-TH (App. D.2): T = ``length``, n = ``nth``, |V| = ``vocab``; ``positions`` scored: ``"from-n"``
    (t = n..T, App. D.2's loss and accuracy positions, the default) or ``"after-n"`` (t > n)."""

    name: ClassVar[str] = "keep-nth"
    length: int = 50
    nth: int = 5
    vocab: int = 128
    positions: str = "from-n"

    def __post_init__(self):
        check_int("length", self.length, 1)
        check_int("nth", self.nth, 1)
        check_int("vocab", self.vocab, 2)
        check_choice("positions", self.positions, POSITIONS)
        if self.nth > self.length:
            raise ValueError(f"nth must be at most the sequence length T={self.length}, got nth={self.nth}")
        if self.positions == "after-n" and self.nth == self.length:
            raise ValueError(f"positions 'after-n' scores nothing when nth = length = {self.length}")

    def generate(self, samples: int, seed: int, device=None) -> TaskBatch:
        return keep_nth(samples, self.length, self.nth, self.vocab, seed=seed, positions=self.positions,
                        device=device)


@dataclass(frozen=True)
class MQARConfig(_Task):
    """MQAR (eq. 46-47, App. D.3) in the format of :func:`signals.tasks.mqar`: T = ``length``, κ = ``kappa``,
    |V| = ``vocab`` values, ``keys`` ``"distinct"`` or ``"iid"`` (repeats answer their latest value); inputs are
    κ + |V| tokens, outputs the |V| values. Drawn on the CPU, then moved."""

    name: ClassVar[str] = "mqar"
    length: int = 100
    kappa: int = 8
    vocab: int = 128
    keys: str = "distinct"

    def __post_init__(self):
        check_int("length", self.length, 1)
        check_int("kappa", self.kappa, 1)
        check_int("vocab", self.vocab, 2)
        check_choice("keys", self.keys, MQAR_KEYS)
        if self.length < 3 * self.kappa:
            raise ValueError(f"MQAR needs length ≥ 3·kappa = {3 * self.kappa}, got length={self.length}")

    @property
    def vocab_size(self) -> int:
        return self.kappa + self.vocab

    def generate(self, samples: int, seed: int, device=None) -> TaskBatch:
        return TaskBatch(*(t.to(device) for t in mqar(samples, self.length, self.kappa, self.vocab, keys=self.keys,
                                                      seed=seed)))


@dataclass(frozen=True)
class InductionConfig(_Task):
    """INDUCTION HEADS (App. D.4) as :func:`signals.tasks.induction_heads` draws it: T = ``length``,
    |V| = ``vocab`` (+ the blank class), hard-setting probability ``hard_prob`` (Fig. 3: 0.75), γ = ``gamma``,
    ``positions`` scored (``"all"``, ``"repeat"`` or ``"hard"``). Drawn on the CPU, then moved."""

    name: ClassVar[str] = "induction"
    length: int = 100
    vocab: int = 20
    hard_prob: float = 0.75
    gamma: float = 0.1
    positions: str = "all"

    def __post_init__(self):
        check_int("length", self.length, 2)
        check_int("vocab", self.vocab, 2)
        check_float("hard_prob", self.hard_prob, 0.0, 1.0)
        check_float("gamma", self.gamma, 0.0, 0.5, low_open=True)
        check_choice("positions", self.positions, INDUCTION_POSITIONS)
        if self.positions == "hard" and not self.hard_prob > 0:
            raise ValueError("positions 'hard' scores the hard setting's position T − r: it needs hard_prob > 0")
        r_max = int(self.gamma * self.length)
        if self.hard_prob > 0 and not 1 <= r_max < self.length - r_max:
            raise ValueError(f"the hard setting needs 1 ≤ ⌊γT⌋ < T/2, got gamma={self.gamma}, "
                             f"length={self.length}")

    @property
    def num_classes(self) -> int:
        return self.vocab + 1

    def generate(self, samples: int, seed: int, device=None) -> TaskBatch:
        b = induction_heads(samples, self.length, self.vocab, hard_prob=self.hard_prob, gamma=self.gamma,
                            positions=self.positions, seed=seed)
        return TaskBatch(*(t.to(device) for t in b))


@dataclass(frozen=True)
class MQARLatestConfig(_Task):
    """MQAR with the latest value (the mechanistic study's Alg. 1, :func:`signals.tasks.latest.mqar_latest`):
    T = ``length``, |K| = ``n_keys`` keys among |V| = ``vocab`` tokens, at most ``noise`` noise tokens before each
    pair, non-query ``targets`` ``"ignore"`` or ``"identity"`` (then the accuracy counts every position)."""

    name: ClassVar[str] = "mqar-latest"
    length: int = 256
    n_keys: int = 1
    vocab: int = 8
    noise: int = 3
    targets: str = "ignore"

    def __post_init__(self):
        check_int("length", self.length, 1)
        check_int("n_keys", self.n_keys, 1)
        check_int("vocab", self.vocab, self.n_keys + 1)
        check_int("noise", self.noise, 0)
        check_choice("targets", self.targets, LATEST_TARGETS)
        if self.length < 3 * self.n_keys:
            raise ValueError(f"length must be at least 3·n_keys = {3 * self.n_keys}, got {self.length}")

    def generate(self, samples: int, seed: int, device=None) -> TaskBatch:
        b, _ = mqar_latest(samples, self.length, self.n_keys, self.vocab, self.noise, targets=self.targets, seed=seed)
        return TaskBatch(*(t.to(device) for t in b))


TASK_CONFIGS = {cls.name: cls for cls in (KeepNthConfig, MQARConfig, InductionConfig, MQARLatestConfig)}


def make_config(registry: dict, what: str, name: str, fields: dict):
    """``registry[name](**fields)`` with None values left at their defaults; an unknown ``name`` or a field the
    config does not have is a ValueError naming it (``what``: "task" or "model")."""
    cls = registry.get(name)
    if cls is None:
        raise ValueError(f"{what} must be one of {', '.join(registry)}, got {name!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in fields.items() if v is not None}
    for k in given:
        if k not in known:
            raise ValueError(f"{k} does not apply to {what} {name} (its fields: {', '.join(sorted(known))})")
    return cls(**given)


def make_task(name: str, **fields):
    """The config of task ``name`` with ``fields`` (None values are left at their defaults)."""
    return make_config(TASK_CONFIGS, "task", name, fields)


def task_from_dict(d: dict):
    """The config recorded as ``to_dict()``."""
    d = dict(d)
    return make_task(d.pop("name"), **d)
