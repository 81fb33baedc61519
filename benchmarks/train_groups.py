"""Several small ensembles at once: groups trained one after the other against ``--concurrent K`` interleaved groups.

The measured case is a figure sweep's typical group: INDUCTION HEADS (T = 100, |V| = 10, p = 0.75), 1-layer Mamba
with its convolution, d = 16, N = 40, 5 seeds per group; G groups (distinct seeds) of ``--steps`` steps each (one
epoch, no early stop). On a machine without CUDA the defaults shrink (d = 4, N = 4, T = 20, 2 groups of 4 steps),
where the interleaving has no streams to use and only the equality is checked.

Verified first: the groups trained side by side end where the groups trained alone end (float32 rounding: the
order of kernels across streams is free, each group's arithmetic is not). Then each K in ``--concurrent`` trains
the G groups from scratch (warm-up: one group trained and thrown away, so that kernels are compiled), and the
table gives the wall time, the ensemble steps per second over all groups, and the speed-up over K = 1.

    python benchmarks/train_groups.py [--groups 8] [--steps 300] [--concurrent 1 2 4 8] [--device auto] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approx.records import atomic_write, device_name, versions  # noqa: E402
from kernels import resolve_device  # noqa: E402
from signals.tasks import InductionConfig  # noqa: E402
from ssm.models import make_model_config, task_defaults  # noqa: E402
from ssm.training.recipe import Recipe  # noqa: E402
from ssm.training.runs import Run, group_runs  # noqa: E402
from ssm.training.sweep import train_groups  # noqa: E402

GPU = {"groups": 8, "steps": 300, "members": 5, "d": 16, "n": 40, "length": 100, "vocab": 10}
CPU = {"groups": 2, "steps": 4, "members": 2, "d": 4, "n": 4, "length": 20, "vocab": 4}


def make_groups(a, first_seed: int = 0) -> list:
    task = InductionConfig(length=a.length, vocab=a.vocab, hard_prob=0.75, gamma=0.1)
    model = make_model_config("mamba", d=a.d, N=a.n, **task_defaults("induction", "mamba"))
    recipe = Recipe(epochs=1, batch_size=16, lr=0.01, train_size=16 * a.steps, val_size=16, test_size=16,
                    stop_loss=0.0)
    runs = [Run(task, model, recipe, first_seed + s) for s in range(a.groups * a.members)]
    return group_runs(runs, a.members)


def train(groups, k, device) -> tuple:
    """Seconds to train ``groups`` with ``k`` at a time, and the weights of every member (in run-key order)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = [m for members in train_groups(groups, concurrent=k, device=device, progress=False) for m in members]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    weights = [np.concatenate([v.ravel() for k_, v in sorted(arr.items()) if k_.startswith("weights.")])
               for _, _, arr in sorted(out, key=lambda m: m[1]["key"])]
    return time.perf_counter() - start, weights


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in GPU:
        p.add_argument(f"--{k}", type=int, default=None)
    p.add_argument("--concurrent", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    for k, v in (GPU if device.type == "cuda" else CPU).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    train(make_groups(a, first_seed=10_000)[:1], 1, device)                 # warm-up: compile the kernels
    rows, reference = [], None
    for k in a.concurrent:
        sec, weights = train(make_groups(a), k, device)
        if reference is None:
            reference = weights
        worst = max(float(np.max(np.abs(w - r))) for w, r in zip(weights, reference))
        assert worst <= 1e-4, f"--concurrent {k}: weights differ from the first mode's by {worst:g}"
        rows.append({"concurrent": k, "seconds": sec, "group_steps_per_s": a.groups * a.steps / sec,
                     "max_weight_difference": worst})
    base = rows[0]["seconds"]
    case = (f"{a.groups} groups of {a.members} Mamba members (INDUCTION HEADS, T = {a.length}, |V| = {a.vocab}, "
            f"d = {a.d}, N = {a.n}, batch 16), {a.steps} steps each, on {device_name(device)}")
    lines = [f"groups side by side: {case}",
             "verified: every mode's weights within 1e-4 of the first mode's (max |Δ| in the table)", "",
             f"{'--concurrent':>12} {'seconds':>9} {'group-steps/s':>14} {'speed-up':>9} {'max |Δ|':>9}"]
    for r in rows:
        lines.append(f"{r['concurrent']:>12} {r['seconds']:>9.2f} {r['group_steps_per_s']:>14,.0f} "
                     f"{base / r['seconds']:>8.2f}× {r['max_weight_difference']:>9.1e}")
    print("\n".join(lines))
    if a.json:
        atomic_write(a.json, json.dumps({"case": case, "results": rows, "device": device_name(device),
                                         "versions": versions(),
                                         "command": "python benchmarks/train_groups.py " + " ".join(argv or sys.argv[1:])},
                                        indent=1))


if __name__ == "__main__":
    main()
