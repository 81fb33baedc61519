"""The ensemble trainer: R members of one stacked model trained together, one step for all (App. D.1 per member).

One step selects each member's batch by index tensors (its own permutation of the training set), runs the
stacked model forward, takes the gradient of the sum of the members' mean losses (each member's weights receive
exactly its own gradient), and applies :class:`ssm.training.adam.StackedAdam` with each member's learning rate
from the cosine schedule, computed on the device (once per epoch, at its start, with the per-epoch schedule; in
the step with the per-step one). Members that early-stopped are masked and stay bit for bit
unchanged. The step has no host synchronisation and no branch on a value, so on CUDA it is captured once in a
CUDA graph and replayed (:mod:`ssm.training.graph`); the eager path runs the same function.

Between epochs (on the host): the validation loss of every member; a member whose loss falls below the recipe's
``stop_loss`` stops (its epochs-to-stop recorded), and with the recipe's ``patience`` on, a member whose validation
accuracy plateaued stops too (recorded apart); the epoch's curves are appended to ``history``. After the last
epoch, or when every member stopped, :meth:`EnsembleTrainer.evaluate` on the test set gives the reported accuracy.

The whole state (weights, Adam moments, counters, curves) round-trips through :meth:`state_dict` /
:meth:`load_state_dict`, so a run resumed from a checkpoint continues exactly as if it had not stopped.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from signals.tasks.counter import permutations, stream
from .adam import StackedAdam, cosine
from .data import GroupData
from .graph import GraphedStep

PERMUTATION_STREAM = 0x5045524D            # "PERM": the batch order of member seed s in epoch e is stream(tag, s, e)
EVAL_ELEMENTS = 1 << 25                     # activations per evaluation chunk (R · sequences · L · width)
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc")
SUMS = ("loss", "correct", "count", "steps")                # an epoch's running sums per member


@contextmanager
def held_interrupt():
    """Hold Ctrl-C (SIGINT) while the block runs and raise it as KeyboardInterrupt when the block ends, so that
    a step and its counters, or an epoch's end, are never cut in half (in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def member_losses(model, params: dict, buffers: dict, batch):
    """Per-member mean cross-entropy over the scored positions, correct and scored counts: three (R,) tensors."""
    logits = model.logits(params, batch.inputs, buffers)
    R, B, L, C = logits.shape
    ce = F.cross_entropy(logits.reshape(-1, C), batch.targets.clamp(min=0).reshape(-1), reduction="none")
    mask = batch.mask.to(logits.dtype)
    count = mask.sum((1, 2))
    loss_sum = (ce.reshape(R, B, L) * mask).sum((1, 2))
    correct = ((logits.argmax(-1) == batch.targets) & batch.mask).sum((1, 2)).to(logits.dtype)
    return loss_sum, correct, count


class EnsembleTrainer:
    """Train R members of ``model`` on ``data`` with ``recipe``.

    Parameters
    ----------
    model : a :class:`ssm.models.stacked.StackedModel`.
    data : the group's :class:`ssm.training.data.GroupData` (member r's task set ``data.data_id[r]``).
    recipe : :class:`ssm.training.recipe.Recipe`.
    seeds : R member seeds (initialisation and batch order).
    lrs : R initial learning rates (default: the recipe's for all).
    device, dtype : where and in what precision the weights live.
    graph : capture the step in a CUDA graph (``"auto"``: on CUDA devices).
    """

    def __init__(self, model, data: GroupData, recipe, seeds, *, lrs=None, device=None, dtype=torch.float32,
                 graph="auto"):
        device = torch.device(device or "cpu")
        self.model, self.data, self.recipe, self.seeds = model, data, recipe, list(seeds)
        self.device, self.dtype = device, dtype
        R, B = len(self.seeds), recipe.batch_size
        self.members = R
        self.params = {k: v.requires_grad_(True) for k, v in model.init(self.seeds, device=device, dtype=dtype).items()}
        self.buffers = model.buffers(data.lengths, device=device, dtype=dtype)
        self.adam = StackedAdam(self.params, beta1=recipe.beta1, beta2=recipe.beta2, eps=recipe.eps)
        lrs = [recipe.lr] * R if lrs is None else list(lrs)
        self.lr = torch.tensor(lrs, dtype=dtype, device=device)
        self.lr_min = torch.full((R,), recipe.lr_min, dtype=dtype, device=device)
        self.active = torch.ones(R, dtype=torch.bool, device=device)
        self.stop_epoch = torch.zeros(R, dtype=torch.int64, device=device)
        self.plateau_epoch = torch.zeros(R, dtype=torch.int64, device=device)
        self.epoch_lr = self.lr.clone()             # the cosine's value in this epoch (schedule "epoch")
        self.position = torch.zeros((), dtype=torch.int64, device=device)
        self.global_step = torch.zeros((), dtype=torch.int64, device=device)
        self.order = torch.empty(R, data.size("train"), dtype=torch.int64, device=device)
        self.offsets = torch.arange(B, device=device)
        self._sums = torch.zeros(len(SUMS), R, dtype=dtype, device=device)    # one tensor: one update per step
        self.sums = dict(zip(SUMS, self._sums))                                  # its rows, by name
        self.epoch, self.step_in_epoch, self.wall_s = 0, 0, 0.0
        self.history = {k: [] for k in CURVES}
        use_graph = device.type == "cuda" if graph == "auto" else bool(graph)
        self._graphed = None
        self._use_graph = use_graph

    # the step ----------------------------------------------------------------------------------------------------

    def _step(self) -> None:
        """One optimizer step of every member (no host synchronisation; captured as is in a CUDA graph)."""
        R, B = self.members, self.recipe.batch_size
        # modulo the set's size: a CUDA graph's warm-up steps (undone after capture) may run past the epoch's last
        # batch when a run resumes near an epoch's end; the steps that count never do
        index = (self.position * B + self.offsets).remainder(self.order.shape[1])
        rows = self.order.gather(1, index.expand(R, B))
        batch = self.data.gather("train", rows)
        loss_sum, correct, count = member_losses(self.model, self.params, self.buffers, batch)
        loss = loss_sum / count.clamp(min=1)
        names = list(self.params)
        grads = torch.autograd.grad(loss.sum(), [self.params[k] for k in names])
        if self.recipe.schedule == "epoch":
            lr = self.epoch_lr
        else:
            lr = cosine(self.lr, self.lr_min, self.global_step, self.recipe.total_steps)
        self.adam.step(self.params, dict(zip(names, grads)), lr, self.active)
        with torch.no_grad():
            self._sums.add_(torch.stack([loss.detach(), correct, count, torch.ones_like(loss)])
                            * self.active.to(self.dtype))
            self.position.add_(1)
            self.global_step.add_(1)

    def mutable_state(self) -> list:
        """Every tensor a step changes (restored after the CUDA-graph warm-up steps)."""
        return (list(self.params.values()) + self.adam.tensors() + [self.position, self.global_step]
                + [self._sums])

    def step(self) -> None:
        """One step, replaying the captured CUDA graph when graphs are on (captured on the first call)."""
        if not self._use_graph:
            self._step()
            return
        if self._graphed is None:
            self._graphed = GraphedStep(self._step, self.mutable_state())
        self._graphed()

    # epochs ------------------------------------------------------------------------------------------------------

    def _set_epoch_lr(self) -> None:
        """The cosine's learning rate of this epoch, computed once per epoch (schedule "epoch")."""
        if self.recipe.schedule == "epoch":
            epoch = torch.tensor(self.epoch, dtype=torch.int64, device=self.device)
            self.epoch_lr.copy_(cosine(self.lr, self.lr_min, epoch, self.recipe.epochs))

    def _permute(self) -> None:
        states = [stream(PERMUTATION_STREAM, s, self.epoch) for s in self.seeds]
        self.order.copy_(permutations(states, self.data.size("train"), device=self.device))

    def _start_epoch(self) -> None:
        self._permute()
        self.position.fill_(0)
        self._set_epoch_lr()
        self._sums.zero_()

    def _end_epoch(self) -> None:
        val_loss, val_acc = self.evaluate("val")
        was = self.active.clone()
        newly = self.active & (val_loss < self.recipe.stop_loss)
        self.stop_epoch.copy_(torch.where(newly, torch.full_like(self.stop_epoch, self.epoch + 1), self.stop_epoch))
        self.active.copy_(self.active & ~newly)          # in place: a captured step reads these very tensors
        s = self.sums
        nan = torch.full_like(val_loss, math.nan)
        rows = {"train_loss": s["loss"] / s["steps"].clamp(min=1), "train_acc": s["correct"] / s["count"].clamp(min=1),
                "val_loss": val_loss, "val_acc": val_acc}
        for k, v in rows.items():
            self.history[k].append(torch.where(was, v, nan).tolist())
        if self.recipe.patience:
            flat = torch.tensor(self._plateaued(), device=self.device) & self.active
            self.plateau_epoch.copy_(torch.where(flat, torch.full_like(self.plateau_epoch, self.epoch + 1),
                                                 self.plateau_epoch))
            self.active.copy_(self.active & ~flat)

    def _plateaued(self) -> list:
        """Per member: whether its best validation accuracy of the last ``patience`` epochs is below its best
        before them plus ``min_gain`` (False until it has trained more than ``patience`` epochs)."""
        P, acc = self.recipe.patience, self.history["val_acc"]
        if len(acc) <= P:
            return [False] * self.members
        out = []
        for r in range(self.members):
            before, recent = [a[r] for a in acc[:-P]], [a[r] for a in acc[-P:]]
            out.append(not math.isnan(recent[-1]) and max(recent) < max(before) + self.recipe.min_gain)
        return out

    def train(self, **callbacks) -> None:
        """Run the remaining epochs (from ``self.epoch`` / ``self.step_in_epoch``) until the recipe's last epoch
        or until every member has stopped; ``callbacks`` as for :meth:`steps`."""
        for _ in self.steps(**callbacks):
            pass

    def steps(self, *, on_step=None, on_epoch=None, checkpoint=None, checkpoint_every: float = 300.0):
        """:meth:`train` as a generator that yields after every step and every epoch's end, so that several
        trainers can be interleaved (each on its own CUDA stream, :func:`ssm.training.sweep.train_groups`).

        ``on_step(trainer)`` is called after every step and ``on_epoch(trainer)`` after every epoch (progress);
        ``checkpoint(trainer)`` whenever ``checkpoint_every`` seconds have passed since the last one (on a step
        or epoch boundary) and when a KeyboardInterrupt stops the run — raised inside, or thrown in at a yield.
        """
        steps_per_epoch = self.recipe.steps_per_epoch
        clock = {"last": time.monotonic(), "started": time.monotonic()}

        def save(force=False):
            if checkpoint is not None and (force or time.monotonic() - clock["last"] >= checkpoint_every):
                self._tick(clock["started"])
                clock["started"] = time.monotonic()
                checkpoint(self)
                clock["last"] = time.monotonic()

        try:
            while self.epoch < self.recipe.epochs:
                if self.step_in_epoch == 0:
                    if not bool(self.active.any()):
                        break
                    self._start_epoch()
                while self.step_in_epoch < steps_per_epoch:
                    with held_interrupt():
                        self.step()
                        self.step_in_epoch += 1
                    if on_step is not None:
                        on_step(self)
                    save()
                    yield
                with held_interrupt():
                    self._end_epoch()
                    self.epoch, self.step_in_epoch = self.epoch + 1, 0
                if on_epoch is not None:
                    on_epoch(self)
                save()
                yield
        except KeyboardInterrupt:
            save(force=True)
            raise
        self._tick(clock["started"])

    def _tick(self, started: float) -> None:
        self.wall_s += time.monotonic() - started

    @torch.no_grad()
    def evaluate(self, split: str):
        """Mean cross-entropy and accuracy over every scored position of ``split``: two (R,) tensors."""
        R, S, L = self.members, self.data.size(split), self.data.length
        cfg = self.model.config
        width = max(self.model.num_classes, cfg.d * max(getattr(cfg, "N", 1), L))
        chunk = max(1, min(S, EVAL_ELEMENTS // (R * L * width)))
        totals = torch.zeros(3, R, dtype=self.dtype, device=self.device)
        for start in range(0, S, chunk):
            rows = torch.arange(start, min(S, start + chunk), device=self.device).expand(R, -1)
            totals += torch.stack(member_losses(self.model, self.params, self.buffers, self.data.gather(split, rows)))
        return totals[0] / totals[2], totals[1] / totals[2]

    def epochs_trained(self) -> list:
        """Per member: the epoch count at which it stopped (early or on a plateau), or the epochs run when it did
        not."""
        stop = (self.stop_epoch + self.plateau_epoch).tolist()
        return [s if s else self.epoch for s in stop]

    # checkpoints -------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to continue exactly (CPU tensors and plain values)."""
        cpu = lambda d: {k: v.detach().cpu().clone() for k, v in d.items()}
        adam = self.adam.state_dict()
        return {"params": cpu(self.params), "exp_avg": cpu(adam["exp_avg"]), "exp_avg_sq": cpu(adam["exp_avg_sq"]),
                "adam_steps": adam["steps"].cpu(), "active": self.active.cpu(), "stop_epoch": self.stop_epoch.cpu(),
                "plateau_epoch": self.plateau_epoch.cpu(),
                "position": self.position.cpu(), "global_step": self.global_step.cpu(), "sums": cpu(self.sums),
                "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "wall_s": self.wall_s,
                "history": {k: [list(r) for r in v] for k, v in self.history.items()}, "seeds": list(self.seeds)}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        if list(state["seeds"]) != self.seeds:
            raise ValueError(f"checkpoint is of members with seeds {state['seeds']}, not {self.seeds}")
        for k, v in self.params.items():
            v.copy_(state["params"][k])
        self.adam.load_state_dict({"exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"],
                                   "steps": state["adam_steps"]})
        self.active.copy_(state["active"])
        self.stop_epoch.copy_(state["stop_epoch"])
        self.plateau_epoch.copy_(state.get("plateau_epoch", torch.zeros_like(self.plateau_epoch)))
        self.position.copy_(state["position"])
        self.global_step.copy_(state["global_step"])
        for k, v in self.sums.items():
            v.copy_(state["sums"][k])
        self.epoch, self.step_in_epoch, self.wall_s = state["epoch"], state["step_in_epoch"], state["wall_s"]
        if self.step_in_epoch and int(state["position"]) != self.step_in_epoch:
            self.step_in_epoch = int(state["position"])     # a checkpoint cut between a step and its count
        self._set_epoch_lr()
        self.history = {k: [list(r) for r in v] for k, v in state["history"].items()}
        if self.step_in_epoch:
            self._permute()
