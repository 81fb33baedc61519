"""Token tasks of the paper, one module per task: seeded generators shared by the constructions and the trainer.

Every generator returns a :class:`TaskBatch` ``(inputs, targets, mask)`` of (samples, T) tensors:

- ``inputs``  int64, the input tokens;
- ``targets`` int64, the class to predict where ``mask`` is True, :data:`IGNORE` (−1) elsewhere;
- ``mask``    bool, the scored positions (accuracy and loss are taken there only).

Positions are 1-based in the formulas, 0-based in the tensors. The tasks:

- :mod:`signals.tasks.keep_nth` — KEEP n-TH (Sec. 4.1, App. D.2);
- :mod:`signals.tasks.mqar` — MQAR (eq. 46-47, App. C.1 and D.3);
- :mod:`signals.tasks.induction` — INDUCTION HEADS (Sec. 5.2, App. C.2 and D.4);
- :mod:`signals.tasks.files` — a user's own sequences in a ``.npz`` file.
"""
from .batch import IGNORE, TaskBatch
from .keep_nth import keep_nth
from .mqar import mqar
from .induction import induction_heads, induction_targets
from .files import load_task_file, save_task_file

TASKS = ("keep-nth", "mqar", "induction")

__all__ = ["IGNORE", "TaskBatch", "TASKS", "keep_nth", "mqar", "induction_heads", "induction_targets",
           "load_task_file", "save_task_file"]
