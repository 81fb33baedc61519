"""Accuracy and speed of the MQAR constructions (Thm. 2-4, App. C.1) over the grid of the paper's sizes.

    PYTHONPATH=. python3 benchmarks/constructions_gpu.py                      # CUDA, full grid, 10 000 sequences
    PYTHONPATH=. python3 benchmarks/constructions_gpu.py --device cpu --quick # smoke test on the CPU
    PYTHONPATH=. python3 benchmarks/constructions_gpu.py --device cpu --engine lambda0   # the CPU grid of the docs

For every variant (mamba, mamba2, s4d), form (one-hot step 1; JL step 2 at Lem. 4's d) and κ ∈ {4, 8, 16, 32},
|V| ∈ {64, 128}, T ∈ {50, 100} (κ = 32 needs T ≥ 3κ, so it runs at T = 100 only) it first verifies (the model's
logits through the scan engine equal the Λ = 0 closed form on 16 sequences), then times the evaluation on
``--samples`` sequences of :func:`signals.tasks.mqar` and prints one table: d, N, parameters, the paper's d and N,
accuracy, errors, seconds. ``--search-p`` adds, per step-2 row, the smallest JL dimension p (bisection,
:func:`ssm.constructions.mqar_eval.smallest_jl_dim`) at which the accuracy is 1.000. ``--json PATH`` also writes the
rows with the device and package versions. Needs only torch (triton on CUDA), numpy.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch

from signals.tasks import mqar as mqar_task
from ssm.constructions import mqar, mqar_eval

KAPPAS = (4, 8, 16, 32)
VOCABS = (64, 128)
LENGTHS = (50, 100)


def grid(quick: bool, variants):
    """(variant, compressed, κ, |V|, T) rows of the benchmark, skipping T < 3κ."""
    kappas, vocabs, lengths = ((4, 8), (64,), (50,)) if quick else (KAPPAS, VOCABS, LENGTHS)
    for variant in variants:
        for compressed in (False, True):
            for vocab in vocabs:
                for length in lengths:
                    for kappa in kappas:
                        if length >= 3 * kappa:
                            yield variant, compressed, kappa, vocab, length


def verify(model, kappa, vocab, length, device) -> float:
    """Largest |scan − closed form| of the logits on 16 sequences, relative to the largest |logit|."""
    batch = mqar_task(16, length, kappa, vocab, seed=12345)
    tokens = batch.inputs.to(device)
    with torch.no_grad():
        a = mqar_eval.forward(model, tokens, "scan")
        b = mqar_eval.forward(model, tokens, "lambda0")
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-30))


def run(args) -> list[dict]:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("constructions_gpu: --device cuda but CUDA is not available (use --device cpu)")
    samples = args.samples if args.samples else (300 if args.quick else 10_000)
    rows = []
    head = (f"{'variant':<7} {'form':<6} {'κ':>3} {'|V|':>4} {'T':>4} {'d':>5} {'N':>3} {'params':>9} "
            f"{'paper d':>8} {'paper N':>7} {'accuracy':>9} {'errors':>6} {'verify':>8} {'sec':>7}"
            + (f" {'min p':>6} {'min d':>6}" if args.search_p else ""))
    print(f"# MQAR constructions on {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.machine()}), "
          f"{samples} sequences per row, engine {args.engine}, seed {args.seed}")
    print(head)
    print("-" * len(head))
    for variant, compressed, kappa, vocab, length in grid(args.quick, args.variants):
        model, sizes = mqar.build(variant, kappa, vocab, length, compressed, seed=args.seed)
        model = model.to(device)
        err = verify(model, kappa, vocab, length, device)
        if err > 1e-4:
            print(f"{variant} {kappa} {vocab} {length}: scan and closed form disagree ({err:.2e}); row skipped")
            continue
        batch = mqar_task(samples, length, kappa, vocab, seed=args.seed)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        scores = mqar_eval.score(model, batch.inputs, batch.targets, batch.mask, engine=args.engine)
        correct, scored = scores["correct"], scores["scored"]
        if device.type == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - start
        row = {"variant": variant, "compressed": compressed, "kappa": kappa, "vocab": vocab, "length": length,
               "d": sizes["d"], "N": sizes["N"], "p": sizes["p"], "parameters": sizes["parameters"],
               "bound_d": sizes["bound_d"], "bound_N": sizes["bound_N"], "bound": sizes["bound"],
               "accuracy": correct / scored, "errors": scored - correct, "scored": scored, "samples": samples,
               "verify_rel_err": err, "seconds": sec}
        line = (f"{variant:<7} {'JL' if compressed else 'onehot':<6} {kappa:>3} {vocab:>4} {length:>4} "
                f"{sizes['d']:>5} {sizes['N']:>3} {sizes['parameters']:>9} {sizes['bound_d']:>8} "
                f"{sizes['bound_N']:>7} {correct / scored:>9.6f} {scored - correct:>6} {err:>8.1e} {sec:>7.2f}")
        if args.search_p and compressed:
            found = mqar_eval.smallest_jl_dim(variant, kappa, vocab, length, samples, args.seed, engine=args.engine,
                                         device=str(device))
            row["min_p"], row["min_d"], row["min_N"] = found["p"], found["d"], found["N"]
            line += f" {str(found['p']):>6} {str(found['d']):>6}"
        print(line, flush=True)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--quick", action="store_true", help="κ ∈ {4, 8}, |V| = 64, T = 50, 300 sequences")
    parser.add_argument("--samples", type=int, default=None, help="sequences per row (default 10 000)")
    parser.add_argument("--engine", choices=("scan", "lambda0"), default="scan",
                        help="scan: the model's scan engine (Triton on CUDA); lambda0: the Λ = 0 closed form")
    parser.add_argument("--variants", nargs="+", choices=mqar.VARIANTS, default=list(mqar.VARIANTS))
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of the JL matrices")
    parser.add_argument("--search-p", action="store_true", help="bisect the smallest JL p reaching 1.000")
    parser.add_argument("--json", default=None, help="write the rows as JSON to this path")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run(args)
    print(f"# {len(rows)} rows, {time.perf_counter() - start:.1f} s")
    if args.json:
        meta = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else platform.machine(),
                "torch": torch.__version__, "python": platform.python_version(), "engine": args.engine,
                "seed": args.seed}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
