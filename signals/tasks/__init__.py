"""Token tasks of the paper, one module per task: seeded generators shared by the constructions and the trainer.

Every generator returns a :class:`TaskBatch` ``(inputs, targets, mask)`` of (samples, T) tensors:

- ``inputs``  int64, the input tokens;
- ``targets`` int64, the class to predict where ``mask`` is True, :data:`IGNORE` (−1) elsewhere;
- ``mask``    bool, the scored positions (accuracy and loss are taken there only).

Positions are 1-based in the formulas, 0-based in the tensors. The tasks:

- :mod:`signals.tasks.keep_nth` — KEEP n-TH (Sec. 4.1, App. D.2);
- :mod:`signals.tasks.mqar` — MQAR (eq. 46-47, App. C.1 and D.3);
- :mod:`signals.tasks.induction` — INDUCTION HEADS (Sec. 5.2, App. C.2 and D.4);
- :mod:`signals.tasks.latest` — MQAR with the latest value (the mechanistic study's Alg. 1);
- :mod:`signals.tasks.files` — a user's own sequences in a ``.npz`` file.

:mod:`signals.tasks.registry` holds one config per task (:data:`TASK_CONFIGS`, :func:`make_task`), read by the
trainer and the command line; :mod:`signals.tasks.counter` is the device-independent counter-based generator.
"""
from .batch import IGNORE, TaskBatch
from .keep_nth import keep_nth
from .mqar import mqar
from .induction import induction_heads, induction_targets
from .latest import mqar_latest
from .files import load_task_file, save_task_file
from .registry import (TASK_CONFIGS, InductionConfig, KeepNthConfig, MQARConfig, MQARLatestConfig, make_task,
                       task_from_dict)

TASKS = tuple(TASK_CONFIGS)

__all__ = ["IGNORE", "TaskBatch", "TASKS", "TASK_CONFIGS", "InductionConfig", "KeepNthConfig", "MQARConfig",
           "MQARLatestConfig", "keep_nth", "mqar", "mqar_latest", "induction_heads", "induction_targets",
           "load_task_file", "make_task", "save_task_file", "task_from_dict"]
