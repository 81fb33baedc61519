"""Accuracy of a token model over the scored positions of a task (App. D: accuracy is taken where the mask is set)."""
from __future__ import annotations

import torch

from kernels import resolve_device
from signals.checks import check_choice, check_int


@torch.no_grad()
def predict(model, inputs: torch.Tensor, *, batch_size: int = 1000, device=None) -> torch.Tensor:
    """argmax over classes of ``model(inputs)``: inputs (S, T) integer → predictions (S, T) int64 (on the CPU).

    Runs in batches of ``batch_size`` sequences on ``device`` (default: the model's device).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if device is None:
        device = next(model.parameters()).device
    out = []
    for start in range(0, inputs.shape[0], batch_size):
        chunk = inputs[start:start + batch_size].to(device)
        out.append(model(chunk).argmax(dim=-1).cpu())
    return torch.cat(out)


@torch.no_grad()
def accuracy(model, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, *, batch_size: int = 1000,
             device=None, logits=None) -> dict:
    """Fraction of scored positions (``mask``) where argmax of the model's logits equals ``targets``: the one
    accuracy of the lab's constructions and trained models (App. D: accuracy is taken where the mask is set).

    inputs, targets: (S, T) integer; mask: (S, T) bool; run in chunks of ``batch_size`` sequences on ``device``
    (default: the model's). ``logits(chunk_inputs, chunk_mask)`` → (M, classes), the logits at the chunk's M
    scored positions in row-major order, replaces ``model(chunk_inputs)[chunk_mask]`` (an engine that computes
    only the scored positions). Returns ``{"accuracy", "correct", "scored", "sequences_all_correct",
    "per_position"}``, the last ``{"correct", "scored"}`` lists over t = 1..T.
    """
    if inputs.shape != targets.shape or inputs.shape != mask.shape:
        raise ValueError(f"inputs, targets and mask must share one shape, got {tuple(inputs.shape)}, "
                         f"{tuple(targets.shape)}, {tuple(mask.shape)}")
    check_int("batch_size", batch_size)
    mask = mask.bool()
    S, T = mask.shape
    if not mask.any():
        raise ValueError("the mask scores no position")
    if device is None:
        device = next(model.parameters()).device
    if logits is None:
        logits = lambda x, m: model(x)[m]                                             # noqa: E731
    correct_t = torch.zeros(T, dtype=torch.int64)
    scored_t = torch.zeros(T, dtype=torch.int64)
    wrong_seq = torch.zeros(S, dtype=torch.int64)
    for start in range(0, S, batch_size):
        sl = slice(start, start + batch_size)
        m = mask[sl]
        where = m.nonzero()                                                            # (M, 2): row-major
        hit = (logits(inputs[sl].to(device), m.to(device)).argmax(-1).cpu() == targets[sl][m].long())
        correct_t += torch.bincount(where[:, 1], weights=hit.double(), minlength=T).long()
        scored_t += torch.bincount(where[:, 1], minlength=T)
        wrong_seq[sl] += torch.bincount(where[:, 0], weights=(~hit).double(), minlength=m.shape[0]).long()
    correct, scored = int(correct_t.sum()), int(scored_t.sum())
    return {"accuracy": correct / scored, "correct": correct, "scored": scored,
            "sequences_all_correct": float((wrong_seq == 0).double().mean()),
            "per_position": {"correct": correct_t.tolist(), "scored": scored_t.tolist()}}


CONSTRUCTION_TASKS = ("keep-nth", "mqar", "induction")
DEFAULTS = {
    "keep-nth": {"vocab": 128, "length": 50, "nth": 5},         # Tab. 1: KEEP FIFTH, T = 50, |V| = 128
    "mqar": {"vocab": 128, "length": 100, "kappa": 8},          # Fig. 2: T = 100, |V| = 128
    "induction": {"vocab": 20, "length": 100},                  # Fig. 3: T = 100, |V| ∈ {5, 10, 20, 40}
}


def evaluate_construction(task: str, *, vocab: int | None = None, length: int | None = None, nth: int | None = None,
                          kappa: int | None = None, variant: str | None = None, hard: bool = False,
                          compressed: bool = False, d: int | None = None, N: int | None = None,
                          data=None, samples: int = 10000, seed: int = 0, device: str = "cpu",
                          batch_size: int = 256, trained=None) -> dict:
    """Build the paper's construction for ``task`` and measure its accuracy over the scored positions.

    Tasks: ``"keep-nth"`` (Cor. 2; ``vocab``, ``length``, ``nth``, ``compressed``), ``"mqar"``
    (:func:`ssm.constructions.mqar.build`: Thm. 2/3/4 by ``variant``, default ``"mamba"``; ``kappa``, ``vocab``,
    ``length``, ``compressed``; ``seed`` also draws the JL matrices) and ``"induction"`` (Lemma 3; ``vocab``,
    ``length``, ``hard``). The data are ``samples`` sequences from the seeded generator of
    :mod:`signals.tasks`, or the user's ``.npz`` file ``data`` (then ``length`` and ``samples`` come from the file).

    ``trained`` — ``(run, model, params)`` of a trained run (:func:`ssm.training.runs.load_trained`) — is scored
    on the same sequences; the task's sizes not given are taken from its task, and must agree with it.

    Returns ``{"config", "metrics", "sizes", "bound"}`` (and ``"trained"``: the trained run's key, model, sizes and
    metrics): the resolved configuration; ``accuracy``, ``correct``, ``scored``, ``sequences_all_correct``; the
    model's d, N, parameters; the paper's stated sizes.
    """
    from signals import tasks
    from .constructions import induction, keep_nth, mqar

    if task not in CONSTRUCTION_TASKS:
        raise ValueError(f"task must be one of {CONSTRUCTION_TASKS}, got {task!r}")
    check_int("samples", samples)
    dev = resolve_device(device)
    cfg = dict(DEFAULTS[task])
    if trained is not None:
        cfg.update(_trained_sizes(task, trained[0].task, vocab=vocab, length=length, nth=nth, kappa=kappa))
    cfg.update({k: v for k, v in (("vocab", vocab), ("length", length), ("nth", nth), ("kappa", kappa))
                if v is not None})
    if kappa is not None and task != "mqar":
        raise ValueError(f"kappa applies to mqar only, not {task}")
    if variant is not None and task != "mqar":
        raise ValueError(f"variant applies to mqar only, not {task}")
    if task != "keep-nth" and nth is not None:
        raise ValueError(f"nth applies to keep-nth only, not {task}")
    if task != "induction" and hard:
        raise ValueError(f"hard applies to induction only, not {task}")
    if task == "induction" and compressed:
        raise ValueError("induction has no compressed construction (Lemma 3 is stated with d = 2|V|)")
    batch = None
    check_int("vocab", cfg["vocab"], 2)
    check_int("length", cfg["length"])
    if data is not None:
        inputs = cfg["vocab"] + cfg.get("kappa", 0)                         # MQAR: κ key tokens, then values
        classes = cfg["vocab"] + (1 if task == "induction" else 0)          # induction adds the blank ×
        batch = tasks.load_task_file(data, vocab_size=inputs, num_classes=classes)
        cfg["length"] = int(batch.inputs.shape[1])
    if task == "keep-nth":
        model = keep_nth.build(cfg["vocab"], cfg["nth"], length=cfg["length"], compressed=compressed, d=d, N=N)
        bound = keep_nth.paper_bound(cfg["vocab"])
        if batch is None:
            batch = tasks.keep_nth(samples, cfg["length"], cfg["nth"], cfg["vocab"], seed=seed)
        cfg["compressed"] = compressed
    elif task == "mqar":
        variant = variant or "mamba"
        check_choice("variant", variant, mqar.VARIANTS)
        model, sizes = mqar.build(variant, cfg["kappa"], cfg["vocab"], cfg["length"], compressed, d, seed, N)
        bound = {"d": sizes["bound_d"], "N": sizes["bound_N"], "source": sizes["bound"]}
        if batch is None:
            batch = tasks.mqar(samples, cfg["length"], cfg["kappa"], cfg["vocab"], seed=seed)
        cfg.update({"variant": variant, "compressed": compressed})
    else:
        model = induction.build(cfg["vocab"], d=d, N=N)
        bound = induction.paper_bound(cfg["vocab"])
        if batch is None:
            batch = tasks.induction_heads(samples, cfg["length"], cfg["vocab"], hard_prob=1.0 if hard else 0.0,
                                          seed=seed)
        cfg["hard"] = hard
    model = model.to(dev)
    metrics = accuracy(model, batch.inputs, batch.targets, batch.mask, batch_size=batch_size, device=dev)
    cfg.update({"task": task, "seed": seed, "samples": int(batch.inputs.shape[0]),
                "data": None if data is None else str(data),
                "d": model.d, "N": model.N})
    out = {"config": cfg, "metrics": metrics, "sizes": model.sizes(), "bound": bound}
    if trained is not None:
        out["trained"] = evaluate_trained(trained, batch, device=dev, batch_size=batch_size)
    return out


def _trained_sizes(task: str, trained_task, **given) -> dict:
    """The sizes of the trained run's task (|V|, T, n or κ) as construction settings; a given one that differs
    is a ValueError naming it."""
    if trained_task.name != task:
        raise ValueError(f"the trained run is on task {trained_task.name}, not {task}")
    sizes = {"vocab": trained_task.vocab, "length": trained_task.length}
    sizes.update({k: getattr(trained_task, k) for k in ("nth", "kappa") if hasattr(trained_task, k)})
    for k, v in given.items():
        if v is not None and k in sizes and v != sizes[k]:
            raise ValueError(f"{k} = {v} differs from the trained run's {k} = {sizes[k]}")
    return sizes


@torch.no_grad()
def evaluate_trained(trained, batch, *, device, batch_size: int = 256) -> dict:
    """:func:`accuracy` of a trained run ``(run, model, params)`` (a one-member stacked model) on ``batch``, whose
    length must be the run's T. Returns the run's key and model line, its parameters and the metrics."""
    run, model, params = trained
    length = int(batch.inputs.shape[1])
    if length != run.task.length:
        raise ValueError(f"the sequences have length {length}, the trained run's T is {run.task.length}")
    params = {k: v.to(device=device, dtype=torch.float32) for k, v in params.items()}
    buffers = model.buffers([length], device=device)
    metrics = accuracy(None, batch.inputs, batch.targets, batch.mask, batch_size=batch_size, device=device,
                       logits=lambda x, m: model.logits(params, x[None], buffers)[0][m])
    return {"key": run.key, "model": run.model.describe(), "parameters": model.parameters(length),
            "metrics": metrics}
