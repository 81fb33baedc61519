"""Training throughput of the ensemble trainer: member-steps per second, eager, CUDA-graphed and per member.

The measured case is docs/training.md's target: an ensemble of 64 Mamba+PE members (d = 32, N = 8) on KEEP FIFTH
(T = 50, |V| = 128) at batch 16. On a machine without CUDA the defaults shrink to a tiny case (4 members, T = 10,
d = 8, N = 4) and the graphed row is skipped. The step is verified first:

- member 0 of the ensemble after one step equals a one-member trainer of the same seed after one step;
- on CUDA, the graphed step equals the eager step from the same state, bit for bit.

Then each mode runs ``--steps`` steps after warm-up, synchronised, and the table gives the time per step and
member-steps per second (members × steps / time); "per member" is one-member steps run one after the other.

    python benchmarks/train.py [--members 64] [--length 50] [--d 32] [--n 8] [--batch 16] [--steps 200]
                               [--device auto] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from approx.records import atomic_write, device_name, versions  # noqa: E402
from kernels import resolve_device  # noqa: E402
from signals.tasks import make_task  # noqa: E402
from ssm.models import build, make_model_config  # noqa: E402
from ssm.training.data import GroupData  # noqa: E402
from ssm.training.ensemble import EnsembleTrainer  # noqa: E402
from ssm.training.recipe import Recipe  # noqa: E402

GPU = {"members": 64, "length": 50, "d": 32, "n": 8, "batch": 16, "steps": 200}
CPU = {"members": 4, "length": 10, "d": 8, "n": 4, "batch": 16, "steps": 5}


def make(args, members, device, graph):
    task = make_task("keep-nth", length=args.length, nth=min(5, args.length), vocab=128)
    recipe = Recipe(epochs=1, batch_size=args.batch, train_size=args.batch * (args.steps + 8), val_size=16,
                    test_size=16)
    data = GroupData([task] * members, recipe, device=device)
    model = build(make_model_config("mamba", d=args.d, N=args.n, pe=True), vocab_size=128, num_classes=128,
                  length=args.length)
    t = EnsembleTrainer(model, data, recipe, list(range(members)), device=device, graph=graph)
    t._start_epoch()
    return t


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(trainer, steps, device) -> float:
    """Seconds per step over ``steps`` steps after three warm-up steps (the first call captures a graph)."""
    for _ in range(3):
        trainer.step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    sync(device)
    return (time.perf_counter() - start) / steps


def verify(args, device) -> list:
    """The checks run before timing; returns their descriptions (raises AssertionError on a mismatch)."""
    done = []
    ens, one = make(args, args.members, device, False), make(args, 1, device, False)
    ens.step()
    one.step()
    worst = max(float((ens.params[k][0] - one.params[k][0]).detach().abs().max()) for k in ens.params)
    bound = 1e-3 * ens.recipe.lr          # float32 rounding, amplified where Adam's first step divides g by |g| + ε
    assert worst <= bound, f"member 0 of the ensemble differs from a one-member run by {worst:g} > {bound:g}"
    done.append(f"member 0 after one step = a one-member run (max |Δ| {worst:.1e} ≤ 10⁻³·lr)")
    if device.type == "cuda":
        eager, graphed = make(args, args.members, device, False), make(args, args.members, device, True)
        for _ in range(2):
            eager.step()
            graphed.step()
        same = all(torch.equal(eager.params[k], graphed.params[k]) for k in eager.params)
        assert same, "the graphed step differs from the eager step"
        done.append("graphed steps = eager steps, bit for bit")
    return done


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in GPU:
        p.add_argument(f"--{k}", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    for k, v in (GPU if device.type == "cuda" else CPU).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    checks = verify(args, device)
    rows = [("eager", args.members, timed(make(args, args.members, device, False), args.steps, device))]
    if device.type == "cuda":
        rows.append(("CUDA graph", args.members, timed(make(args, args.members, device, True), args.steps, device)))
    single = "CUDA graph" if device.type == "cuda" else "eager"
    per = timed(make(args, 1, device, device.type == "cuda"), args.steps, device)
    rows.append((f"per member, sequential ({single})", 1, per))
    case = (f"{args.members} Mamba+PE members, d = {args.d}, N = {args.n}, T = {args.length}, batch {args.batch}, "
            f"{args.steps} timed steps on {device_name(device)}")
    lines = [f"training throughput: {case}", *(f"verified: {c}" for c in checks), "",
             f"{'mode':<34} {'ms per step':>12} {'member-steps/s':>15}"]
    results = []
    for mode, members, sec in rows:
        rate = members / sec
        lines.append(f"{mode:<34} {sec * 1e3:>12.3f} {rate:>15,.0f}")
        results.append({"mode": mode, "members": members, "ms_per_step": sec * 1e3, "member_steps_per_s": rate})
    print("\n".join(lines))
    if args.json:
        atomic_write(args.json, json.dumps({"case": case, "verified": checks, "results": results,
                                            "device": device_name(device), "versions": versions(),
                                            "command": "python benchmarks/train.py " + " ".join(argv or sys.argv[1:])},
                                           indent=1))


if __name__ == "__main__":
    main()
