"""Where a training step of the mechanistic study's Table 1 models goes: attention and weight gradients, measured.

Two parts of a stacked model's step are timed against the way they were first written:

- **attention** — the Transformer's attention (:meth:`ssm.models.transformer.StackedTransformer.attention`) calls
  ``F.scaled_dot_product_attention`` (on CUDA in float32 the memory-efficient kernel: the (L, L) scores never reach
  memory); the baseline writes it out (scores, causal mask, softmax, product), the scores in memory;
- **weight gradients** — :func:`ssm.models.stacked.linear` cuts the batch·L rows into slices so that the weight
  gradient's long sums run as many matmul items (``ROWS_PER_SLICE``); the baseline is one slice per member.

Each case is a Table 1 row (``ssm/mechanism/table1.py``) on the latest-value MQAR at κ = 4 with the table's recipe
(batch 16; ``--members`` members, 3 = one cell's seeds, 9 = the sweep's group of three T), and ``--case fig3``
adds the slowest group of Fig. 3 (Mamba-Δ⊤, |V| = 40, d = 96, N = 160, 5 members, T = 100).

Verified first, per case: every mode's logits and weight gradients agree with the first mode's on the same weights
and batch (float32 rounding). Then each mode trains ``--steps`` steps after the warm-up (CUDA-graphed on CUDA, as
the sweeps run) and the table gives ms per ensemble step. ``--profile`` prints the ten CUDA kernels that take the
most time in five eager steps of the default mode of each case. On a machine without CUDA the defaults shrink
(T = 16, 3 steps) and only the agreement means anything.

    python benchmarks/train_step.py [--rows mamba tf2 tf1-conv tf2-conv-rope] [--lengths 128 256 512]
                                    [--members 3] [--case fig3] [--steps 100] [--profile] [--device auto] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approx.records import atomic_write, device_name, versions  # noqa: E402
from kernels import resolve_device  # noqa: E402
from signals.tasks import MQARLatestConfig  # noqa: E402
from ssm.mechanism.table1 import NOISE, RECIPE, ROWS, VOCAB  # noqa: E402
from ssm.models import build, make_model_config, stacked  # noqa: E402
from ssm.models.stacked import linear  # noqa: E402
from ssm.training.data import GroupData  # noqa: E402
from ssm.training import figures  # noqa: E402
from ssm.training.ensemble import EnsembleTrainer, member_losses  # noqa: E402

#: mode → (attention written out, rows per slice); the last is the lab's default
MODES = {"written out, one slice": (True, 0), "fused, one slice": (False, 0),
         "fused, sliced": (False, stacked.ROWS_PER_SLICE)}
SSM_MODES = {"one slice": (False, 0), "sliced": (False, stacked.ROWS_PER_SLICE)}


def written_out(self, params: dict, x: torch.Tensor, p: str = "") -> torch.Tensor:
    """The baseline: causal attention with its (R, B, H, L, L) scores in memory."""
    R, B, L, d = x.shape
    H = self.config.heads
    q, k, v = linear(x, params[f"{p}attn.in_proj"], params[f"{p}attn.in_bias"]).split(d, dim=-1)
    q, k, v = (z.reshape(R, B, L, H, d // H).transpose(2, 3) for z in (q, k, v))
    if self.config.position == "rope":
        q, k = self.rotate(q), self.rotate(k)
    scores = q @ k.transpose(-1, -2) / (d // H) ** 0.5
    causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
    out = (scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v).transpose(2, 3).reshape(R, B, L, d)
    return linear(out, params[f"{p}attn.out_proj"], params[f"{p}attn.out_bias"])


def case_of(name: str, length: int, members: int):
    """(task, model config, members) of a Table 1 row at T, or of ``fig3`` (its Mamba-Δ⊤ panel's cell
    |V| = 40, d = 96, as the figure's sweep builds it)."""
    if name == "fig3":
        panel = figures.panels("fig3", models=["mamba-dt"])[0]
        return panel.task_config(40), panel.model_config(40, 96), panel.seeds
    task = MQARLatestConfig(length=length, n_keys=4, vocab=VOCAB, noise=NOISE)
    return task, make_model_config(ROWS[name][1], **ROWS[name][2]), members


def make(case, device, mode, steps: int, graph="auto"):
    task, config, members = case
    written, rows = mode
    recipe = RECIPE.replace(train_size=RECIPE.batch_size * (steps + 8), val_size=16, test_size=16)
    data = GroupData([task] * members, recipe, device=device)
    model = build(config, vocab_size=task.vocab_size, num_classes=task.num_classes, length=task.length)
    if written:
        model.attention = types.MethodType(written_out, model)
    trainer = EnsembleTrainer(model, data, recipe, list(range(members)), device=device, graph=graph)
    trainer._start_epoch()
    trainer.rows_per_slice = rows
    return trainer


def with_slices(trainer, fn):
    stacked.ROWS_PER_SLICE, saved = trainer.rows_per_slice, stacked.ROWS_PER_SLICE
    try:
        return fn()
    finally:
        stacked.ROWS_PER_SLICE = saved


def outputs(trainer, params) -> list:
    """Logits and weight gradients of one batch under the trainer's mode."""
    batch = trainer.data.gather("train", torch.arange(RECIPE.batch_size, device=params["head"].device)
                                .expand(trainer.members, -1))

    def run():
        p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        logits = trainer.model.logits(p, batch.inputs, trainer.buffers)
        loss = member_losses(trainer.model, p, trainer.buffers, batch)[0].sum()
        return [logits.detach(), *torch.autograd.grad(loss, list(p.values()))]
    return with_slices(trainer, run)


def agreement(case, device, modes) -> float:
    """Largest relative difference (per tensor, to its largest entry) between each mode's outputs and the first's."""
    first = make(case, device, next(iter(modes.values())), 1)
    ref = outputs(first, first.params)
    worst = 0.0
    for mode in list(modes.values())[1:]:
        for a, b in zip(ref, outputs(make(case, device, mode, 1), first.params)):
            worst = max(worst, float((a - b).abs().max() / a.abs().max().clamp(min=1e-30)))
    return worst


def timed(trainer, steps: int, device) -> float:
    """Seconds per step over ``steps`` steps after three warm-up steps (the first captures the graph on CUDA)."""
    def run():
        for _ in range(3):
            trainer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) / steps
    return with_slices(trainer, run)


def profile(case, device, mode) -> str:
    """The ten CUDA kernels taking the most time over five eager steps."""
    trainer = make(case, device, mode, 8, graph=False)
    with_slices(trainer, trainer.step)
    torch.cuda.synchronize(device)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            with_slices(trainer, trainer.step)
        torch.cuda.synchronize(device)
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=10, max_name_column_width=70)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--lengths", type=int, nargs="+", default=None)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--case", choices=["fig3"], nargs="*", default=[])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    args = p.parse_args(argv)
    for name in ("members", "steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    lengths = args.lengths or ([128, 256, 512] if cuda else [16])
    steps = args.steps or (100 if cuda else 3)
    cases = [(row, T) for row in args.rows for T in lengths] + [(c, 100) for c in args.case]
    lines = [f"training step of Table 1's models, batch {RECIPE.batch_size}, {steps} timed steps, "
             f"{'CUDA graph' if cuda else 'eager'}, on {device_name(device)}", "",
             f"{'case':<15} {'T':>5} {'R':>3} {'rel. diff':>10}  ms per step by mode"]
    results, profiles = [], []
    for name, length in cases:
        case = case_of(name, length, args.members)
        modes = MODES if case[1].name == "transformer" else SSM_MODES
        diff = agreement(case, device, modes)
        assert diff < 1e-3, f"{name} T={length}: the modes' outputs differ by {diff:.1e} (relative)"
        ms = {m: 1e3 * timed(make(case, device, mode, steps), steps, device) for m, mode in modes.items()}
        first = next(iter(ms.values()))
        lines.append(f"{name:<15} {length:>5} {case[2]:>3} {diff:>10.1e}  " + ", ".join(
            f"{m} {v:.3f} ({first / v:.1f}×)" for m, v in ms.items()))
        results.append({"case": name, "T": length, "members": case[2], "relative_difference": diff, "ms": ms})
        if args.profile and cuda:
            last = list(modes)[-1]
            profiles.append(f"{name} T = {length}, {last}:\n{profile(case, device, modes[last])}")
    print("\n".join(lines + [""] + profiles))
    if args.json:
        command = "python benchmarks/train_step.py " + " ".join(argv or sys.argv[1:])
        atomic_write(args.json, json.dumps({"results": results, "profiles": profiles, "device": device_name(device),
                                            "versions": versions(), "command": command}, indent=1))


if __name__ == "__main__":
    main()
