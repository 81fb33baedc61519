"""The data of an ensemble group: each distinct task config's train/validation/test sets, once, on the device.

Members that share a task config (all seeds of one cell) share its sequences, drawn from the recipe's fixed data
seeds. Members with shorter sequences than the group's longest are padded at the end (token 0, not scored);
every model is causal, so the padding never reaches a scored position. A batch is selected by index tensors:
member r's rows ``rows[r]`` of its own data set, gathered in one indexing call (no host synchronisation).
"""
from __future__ import annotations

import torch

from kernels import free_memory
from signals.tasks import IGNORE, TaskBatch

SPLITS = ("train", "val", "test")


def pad(batch: TaskBatch, length: int) -> TaskBatch:
    """Pad (S, T) tensors to (S, length): inputs 0, targets IGNORE, mask False."""
    extra = length - batch.inputs.shape[1]
    if extra == 0:
        return batch
    return TaskBatch(torch.nn.functional.pad(batch.inputs, (0, extra), value=0),
                     torch.nn.functional.pad(batch.targets, (0, extra), value=IGNORE),
                     torch.nn.functional.pad(batch.mask, (0, extra), value=False))


class GroupData:
    """Train/validation/test sets of a group's members.

    Parameters
    ----------
    tasks : the task config of each member (R entries; equal configs share one data set).
    recipe : :class:`ssm.training.recipe.Recipe` (sizes and data seeds).
    device : where the sequences live.

    Attributes: ``length`` (the longest T), ``lengths`` (R,) list, ``sets[split]`` a :class:`TaskBatch` of
    (configs, S, length) tensors, ``data_id`` (R,) int64 tensor: member r reads ``sets[split][data_id[r]]``.
    """

    def __init__(self, tasks, recipe, device=None):
        distinct = list(dict.fromkeys(tasks))
        self.tasks = distinct
        self.lengths = [t.length for t in tasks]
        self.length = max(self.lengths)
        self.data_id = torch.tensor([distinct.index(t) for t in tasks], dtype=torch.int64, device=device)
        seeds = recipe.data_seeds()
        sizes = {"train": recipe.train_size, "val": recipe.val_size, "test": recipe.test_size}
        need = len(distinct) * sum(sizes.values()) * self.length * 17            # int64 inputs, targets; bool mask
        free = free_memory(torch.device(device or "cpu"))
        if need > free:
            raise ValueError(f"the data sets of this group need {need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB are "
                             f"free on {device or 'cpu'}; lower train_size or test_size")
        self.sets = {}
        for split in SPLITS:
            parts = [pad(t.generate(sizes[split], seeds[split], device), self.length) for t in distinct]
            self.sets[split] = TaskBatch(*(torch.stack(z) for z in zip(*parts)))

    def size(self, split: str) -> int:
        return self.sets[split].inputs.shape[1]

    def gather(self, split: str, rows: torch.Tensor) -> TaskBatch:
        """Member r's sequences ``rows[r]`` (R, B) → (R, B, length) inputs, targets, mask."""
        ids = self.data_id[:, None].expand_as(rows)
        s = self.sets[split]
        return TaskBatch(s.inputs[ids, rows], s.targets[ids, rows], s.mask[ids, rows])
