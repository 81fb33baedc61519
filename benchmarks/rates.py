"""Benchmark of the rate sweep (``approx rates``, :mod:`approx.rates`): verify, then time the default full sweep.

1. verify on a small sweep: every unit of the device run equals the same unit on the CPU (float64, 1e-8 relative),
   S4D through the scan equals the FFT Fourier partial sums, and Mamba-Haar at N = 3k equals ideal Haar at k;
   a failing check stops the benchmark before anything is timed;
2. time the default full sweep — m = 1 2 3 5, N = 1..64, 100 trials, L = 4096, all default units (S4D Fourier,
   Mamba-Haar, Mamba-Heaviside, Haar, Fourier) — with no store (every unit computed), after one warm-up unit;
   optionally at L = 65536 (``--long``) and with learned Mamba bases at N = m + 1 (``--learned``);
3. print one table: the sweep, its units' seconds, the total, and the fitted rates of the timed run.

    PYTHONPATH=. python benchmarks/rates.py                     # CUDA when available
    PYTHONPATH=. python benchmarks/rates.py --long --learned    # also L = 65536 and learned bases
    PYTHONPATH=. python benchmarks/rates.py --device cpu --quick
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np
import torch

from approx.rates import compute_unit, plan_units, rate_sweep
from approx.records import versions


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def verify(device) -> list:
    """The checks of step 1; returns (name, passed, detail) rows."""
    rows = []
    kw = dict(n_max=30, trials=4, samples=1024, seed=7)
    units = {}
    for m, b, s in plan_units([2], ["s4d", "mamba"], ["fourier", "best", "haar", "heaviside"]) + \
            [(2, "fourier", "best")]:
        dev_l2 = compute_unit(m, b, s, device=device, **kw)[0]
        cpu_l2 = compute_unit(m, b, s, device="cpu", **kw)[0]
        ok = np.allclose(dev_l2, cpu_l2, rtol=1e-8, atol=1e-14)
        rows.append((f"{b}/{s}: {device.type} = cpu", ok, f"max |diff| {np.abs(dev_l2 - cpu_l2).max():.1e}"))
        units[(b, s)] = dev_l2
    d = np.abs(units[("s4d", "fourier")] - units[("fourier", "partial")]).max()
    rows.append(("s4d/fourier (scan) = fourier/partial (FFT)", d < 1e-10, f"max |diff| {d:.1e}"))
    d = np.abs(units[("s4d", "best")] - units[("fourier", "best")]).max()
    rows.append(("s4d/best (scan) = fourier/best (FFT)", d < 1e-10, f"max |diff| {d:.1e}"))
    n = np.arange(3, 31, 3)
    d = np.abs(units[("mamba", "haar")][:, n - 1] - units[("haar", "best")][:, n // 3 - 1]).max()
    rows.append(("mamba/haar at 3k = haar/best at k", d < 1e-8, f"max |diff| {d:.1e}"))
    return rows


def timed_sweep(device, **kw):
    sync(device)
    start = time.perf_counter()
    sweep = rate_sweep(device=device.type, progress=False, store=None, **kw)
    sync(device)
    return sweep, time.perf_counter() - start


def fmt_fit(u) -> str:
    f = u["fit"]
    if f.get("estimate") is None:
        return "—" if u["theory"]["law"] != "floor" else f"floor from N = {u['floor_n']}"
    def g(v):
        return "inf" if math.isinf(v) else f"{v:.3f}"
    return f"{f['name']} = {g(f['estimate'])} [{g(f['ci'][0])}, {g(f['ci'][1])}] N {f['n_range'][0]}-{f['n_range'][1]}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="m 1 2 3, N ≤ 32, 20 trials (the CPU target size)")
    ap.add_argument("--long", action="store_true", help="also time the sweep at L = 65536")
    ap.add_argument("--learned", action="store_true", help="also time learned Mamba bases at N = m + 1")
    ap.add_argument("--json", default=None, help="write the rows (with device and versions) to this file")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    print(f"# rate sweep benchmark on {name}, torch {torch.__version__}")

    checks = verify(device)
    for what, ok, detail in checks:
        print(f"verify  {'ok  ' if ok else 'FAIL'}  {what}  ({detail})")
    if not all(ok for _, ok, _ in checks):
        raise SystemExit("verification failed: nothing timed")

    compute_unit(1, "mamba", "haar", n_max=9, trials=2, samples=4096, seed=0, device=device)   # warm-up
    base = dict(m=[1, 2, 3], n_max=32, trials=20) if args.quick else dict(m=[1, 2, 3, 5], n_max=64, trials=100)
    runs = [("default", dict(base, samples=4096))]
    if args.long:
        runs.append(("L = 65536", dict(base, samples=65536)))
    if args.learned:
        runs.append(("learned N = m+1", dict(base, samples=4096, basis=["mamba"], strategy=["learned"],
                                             reference=False)))
    rows = []
    print(f"\n{'sweep':<18} {'unit':<20} {'m':>2} {'seconds':>9}  fitted rate")
    for label, kw in runs:
        sweep, wall = timed_sweep(device, **kw)
        for u in sweep.units:
            print(f"{label:<18} {u['basis'] + '/' + u['strategy']:<20} {u['m']:>2} {u['wall_s']:>9.3f}  {fmt_fit(u)}")
            for info in u["extra"].get("learned", []):
                print(f"{'':<18} {'':<20} {'':>2} {'':>9}  learned N = {info['n']}: {info['below_threshold']}/"
                      f"{info['trials']} trials below {info['threshold']:g}")
            rows.append({"sweep": label, "m": u["m"], "basis": u["basis"], "strategy": u["strategy"],
                         "seconds": u["wall_s"], "fit": u["fit"], "learned": u["extra"].get("learned")})
        cfg = sweep.config
        print(f"{label:<18} {'TOTAL':<20} {'':>2} {wall:>9.3f}  m {cfg['m']}, N 1..{cfg['n_max']}, "
              f"{cfg['trials']} trials, L = {cfg['samples']}")
        rows.append({"sweep": label, "total_seconds": wall, "config": cfg})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "versions": versions(), "checks": checks, "rows": rows}, f, indent=2,
                      default=str)


if __name__ == "__main__":
    main()
