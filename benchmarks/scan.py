"""Benchmark of the scan engine: verify, then time (docs/design.md §2; the kernels of kernels/).

For each size (batch, D, N, L[, G]) — G > 1 for grouped B, C (batch, G, N, L): an ensemble of G models folded into
the channels, as the trainer runs them — in Mamba's setting (Δ per channel, real A, Δ·u·B input term, D skip):
1. verify every method's y and gradients (u, Δ, A, B, C, D) against the float64 PyTorch reference on the first
   ``--verify-batch`` sequences (a method that fails is reported and not timed);
2. time the forward and the forward+backward (median of CUDA-event timings after warm-up, triton.testing.do_bench;
   on the CPU, the median of wall-clock repeats) of:
   - ``gluon``: the Gluon kernels (kernels/gluon_scan.py; the lab's path for real float32 scans on CUDA);
   - ``triton``: the Triton kernels (kernels/triton_scan.py; the lab's path for complex or float64 scans, and on
     the CPU under TRITON_INTERPRET=1);
   - ``loop``: the PyTorch reference loop (kernels.reference); timed on the first ``--loop-max-len`` steps and
     scaled linearly to L when L is longer (marked ``~``);
   - ``doubling``: a plain PyTorch parallel scan (Hillis-Steele doubling over a materialised (batch, D, N, L)
     tensor), written below;
   - ``mambapy``: mambapy.pscan (Blelloch, pure PyTorch), in mambapy's own layout, when the package imports;
   - ``mamba_ssm``: mamba_ssm's CUDA selective_scan_fn, when the package imports.
3. print ms, effective GB/s over the minimal bytes (forward: read u, Δ, B, C, write y; backward: read u, Δ, B, C,
   dy, write du, dΔ, dB, dC), that as a fraction of a device-to-device copy measured in the same run, and
   the lab kernels' speed-up over each other method (``--base``: gluon on CUDA, triton on the CPU);
4. on CUDA, with ``--extra``: the forward + backward at the smallest size captured in a CUDA graph (replays
   timed; the lab's kernels and mamba_ssm), the precision case (Δ = 1e-8 over L = 65 536 against float64), and the
   extreme inputs that must stay finite (Δ·A = −1e4, L = 100 000, complex A with |Im A·Δ| = 10 per step).

    PYTHONPATH=. python benchmarks/scan.py                 # GPU sizes on CUDA, tiny sizes on the CPU
    PYTHONPATH=. python benchmarks/scan.py --extra         # also graphs, precision and extreme inputs
    PYTHONPATH=. python benchmarks/scan.py --sweep         # also time a few kernel configurations
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

from kernels import selective_scan, selective_scan_ref
from kernels.autograd import selective_scan_triton

GPU_SIZES = [(16, 64, 16, 128), (16, 64, 64, 128), (16, 64, 32, 1024), (8, 1024, 16, 2048), (32, 1024, 16, 4096),
             (16, 2048, 8, 50, 64), (16, 64 * 144, 32, 100, 64)]
CPU_SIZES = [(2, 4, 4, 16), (2, 8, 4, 33), (2, 8, 4, 20, 4)]
# configurations tried by --sweep, by kernels: Triton (BD, T, warps); Gluon (NPT, T, warps, ring stages) for the
# forward and (NPT, T, warps, ring stages) for the forward with checkpoints + backward (T the checkpoint interval; the
# rest the backward's)
SWEEPS = {"triton": {"fwd": [(16, 8, 2), (16, 4, 1), (8, 16, 4), (32, 4, 1), (32, 8, 2)],
                     "bwd": [(16, 8, 4), (8, 16, 4), (8, 8, 4), (32, 8, 4)]},
          "gluon": {"fwd": [(8, 8, 2, 1), (8, 8, 2, 2), (8, 8, 2, 3), (8, 8, 2, 4), (4, 8, 2, 3), (4, 8, 4, 3),
                            (8, 8, 4, 3), (16, 4, 2, 3), (8, 4, 2, 4)],
                    "bwd": [(4, 8, 2, 1), (4, 8, 2, 2), (4, 8, 2, 3), (2, 8, 2, 3), (2, 8, 4, 3), (4, 8, 4, 3),
                            (4, 4, 2, 3)]}}


def make_inputs(batch, dim, nstate, length, device, dtype=torch.float32, seed=0, groups=1):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, dim, length, generator=g, dtype=dtype)
    delta = 0.01 + 0.2 * torch.rand(batch, dim, length, generator=g, dtype=dtype)
    A = -torch.exp(torch.randn(dim, nstate, generator=g, dtype=dtype) * 0.5)
    bc = (batch, groups, nstate, length) if groups > 1 else (batch, nstate, length)
    B = torch.randn(bc, generator=g, dtype=dtype)
    C = torch.randn(bc, generator=g, dtype=dtype)
    D = torch.randn(dim, generator=g, dtype=dtype)
    return [x.to(device) for x in (u, delta, A, B, C, D)]


# ---- peers -------------------------------------------------------------------------------------------------------

def scan_gluon(u, delta, A, B, C, D):
    return selective_scan_triton(u, delta, A, B, C, D, kernels="gluon")


def scan_triton(u, delta, A, B, C, D):
    return selective_scan_triton(u, delta, A, B, C, D, kernels="triton")


def scan_lab(u, delta, A, B, C, D):
    """The lab's own dispatch (kernels.selective_scan on the GPU kernels)."""
    return selective_scan(u, delta, A, B, C, D, backend="triton")


def scan_loop(u, delta, A, B, C, D):
    return selective_scan_ref(u, delta, A, B, C, D)


def scan_doubling(u, delta, A, B, C, D):
    """Hillis-Steele scan of h_t = a_t h_{t−1} + b_t on (batch, D, N, L): log2 L rounds of (a, b) ∘ shift."""
    a = torch.exp(delta[:, :, None, :] * A[None, :, :, None])
    b = (delta * u)[:, :, None, :] * B[:, None, :, :]
    k = 1
    while k < u.shape[-1]:
        b = torch.cat([b[..., :k], a[..., k:] * b[..., :-k] + b[..., k:]], dim=-1)
        a = torch.cat([a[..., :k], a[..., k:] * a[..., :-k]], dim=-1)
        k *= 2
    return (b * C[:, None, :, :]).sum(2) + D[None, :, None] * u


def peer_mambapy():
    try:
        from mambapy.pscan import pscan
    except ImportError:
        return None

    def scan_mambapy(u, delta, A, B, C, D):
        """mambapy.mamba.MambaBlock.selective_scan on our (batch, D, L) layout (theirs is (batch, L, D))."""
        x, dt = u.transpose(1, 2), delta.transpose(1, 2)
        dA = torch.exp(dt.unsqueeze(-1) * A)
        bx = (dt * x).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2)
        hs = pscan(dA, bx)
        y = (hs @ C.transpose(1, 2).unsqueeze(-1)).squeeze(3) + D * x
        return y.transpose(1, 2)
    return scan_mambapy


def peer_mamba_ssm():
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError:
        return None

    def scan_mamba_ssm(u, delta, A, B, C, D):
        return selective_scan_fn(u, delta, A, B, C, D)           # grouped B, C (batch, G, N, L) as mamba_ssm takes
    return scan_mamba_ssm


# ---- measuring ---------------------------------------------------------------------------------------------------

def bench(fn, device):
    """Median milliseconds of fn()."""
    if device == "cuda":
        import triton.testing
        return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
    fn()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def copy_bandwidth(device):
    """GB/s of a device-to-device copy, counting bytes read plus bytes written."""
    n = (1 << 28) if device == "cuda" else (1 << 22)
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src), device)
    return 2 * src.numel() * 4 / ms / 1e6


def fwd_and_grad(fn, args, gy):
    """Closures: the forward, and the forward + backward to every input."""
    def fwd():
        with torch.no_grad():
            return fn(*args)

    def fwd_bwd():
        return torch.autograd.grad(fn(*args), args, gy)
    return fwd, fwd_bwd


def verify(fn, args64, ref, gy64):
    """Max over outputs of ‖out − ref‖ / ‖ref‖, fn run in float32 on float32 copies."""
    args = [a.float().detach().requires_grad_() for a in args64]
    y = fn(*args)
    grads = torch.autograd.grad(y, args, gy64.float())
    return max(float((o.double() - r).norm() / r.norm()) for o, r in zip((y,) + grads, ref))


def minimal_bytes(batch, dim, nstate, length, groups=1, elem=4):
    big, small = batch * dim * length * elem, batch * groups * nstate * length * elem
    fwd = 3 * big + 2 * small                           # u, Δ, y;  B, C
    bwd = 5 * big + 4 * small                           # u, Δ, dy, du, dΔ;  B, C, dB, dC
    return fwd, fwd + bwd


def run(args):
    device = args.device
    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes else \
        (GPU_SIZES if device == "cuda" else CPU_SIZES)
    peers = {"loop": scan_loop, "doubling": scan_doubling}
    missing = []
    for name, make in (("mambapy", peer_mambapy), ("mamba_ssm", peer_mamba_ssm)):
        fn = make()
        if fn is None:
            missing.append(name)
        elif name == "mamba_ssm" and device != "cuda":
            missing.append(name + " (CUDA only)")
        else:
            peers[name] = fn
    copy_gbs = copy_bandwidth(device)
    lines = [f"device: {torch.cuda.get_device_name() if device == 'cuda' else platform.processor() or 'cpu'}",
             f"torch {torch.__version__}, triton {_triton_version()}, python {platform.python_version()}",
             f"command: {' '.join(sys.argv)}",
             f"copy bandwidth (read + write): {copy_gbs:.0f} GB/s",
             f"not available: {', '.join(missing) or 'none'}"]
    for line in lines:
        print(line, flush=True)
    rows = []
    if args.sweep_only:
        for size in sizes:
            inputs = [a.requires_grad_() for a in make_inputs(*size[:4], device, groups=(size + (1,))[4])]
            sweep(inputs, torch.randn_like(inputs[0]), size, copy_gbs, lines, args)
        if args.out:
            with open(args.out, "w") as f:
                f.write("\n".join(lines) + "\n")
        return
    for size in sizes:
        batch, dim, nstate, length, groups = (size + (1,))[:5]
        args64 = make_inputs(min(batch, args.verify_batch), dim, nstate, length, device, torch.float64, seed=1,
                             groups=groups)
        gy64 = torch.randn(args64[0].shape, dtype=torch.float64, device=device)
        leaves = [a.detach().requires_grad_() for a in args64]
        y_ref = selective_scan_ref(*leaves)
        ref = (y_ref.detach(),) + torch.autograd.grad(y_ref, leaves, gy64)
        del y_ref, leaves
        inputs = [a.requires_grad_() for a in make_inputs(batch, dim, nstate, length, device, groups=groups)]
        gy = torch.randn_like(inputs[0])
        b_fwd, b_all = minimal_bytes(batch, dim, nstate, length, groups)
        results = {}
        own = [("gluon", scan_gluon)] if device == "cuda" else []
        for name, fn in own + [("triton", scan_triton)] + list(peers.items()):
            if args.methods and name not in args.methods:
                continue
            if groups > 1 and name in ("doubling", "mambapy"):
                continue                                       # they take one B, C for all channels
            try:
                err = verify(fn, args64, ref, gy64)
                if not err < args.tol:
                    results[name] = dict(err=err, fail=f"verify: rel. error {err:.1e}")
                    continue
                fn_args, scale = inputs, 1.0
                if name == "loop" and length > args.loop_max_len:
                    keep = args.loop_max_len
                    fn_args = [x[..., :keep] if x.dim() == 3 else x for x in inputs]
                    fn_args = [x.detach().requires_grad_() for x in fn_args]
                    scale = length / keep
                fwd, fwd_bwd = fwd_and_grad(fn, fn_args, gy[..., :fn_args[0].shape[-1]])
                results[name] = dict(err=err, fwd=bench(fwd, device) * scale, all=bench(fwd_bwd, device) * scale,
                                     extrap=scale != 1.0)
            except torch.cuda.OutOfMemoryError:
                results[name] = dict(fail="out of memory")
            except RuntimeError as e:
                results[name] = dict(fail=f"error: {str(e).splitlines()[0][:60]}")
            finally:
                if device == "cuda":
                    torch.cuda.empty_cache()
            print(f"{size} {name}: {results[name]}", flush=True)
        if args.sweep and device == "cuda":
            sweep(inputs, gy, size, copy_gbs, lines, args)
        rows.append((size, b_fwd, b_all, results))
        del inputs, gy, args64, gy64, ref
    table = format_table(rows, copy_gbs, args.base or ("gluon" if device == "cuda" else "triton"))
    if args.extra and device == "cuda":
        table += [""] + extra_checks(peers, sizes[0])
    text = "\n".join(lines + [""] + table)
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


def sweep(inputs, gy, size, copy_gbs, lines, args):
    """Time one family of kernels directly (``--sweep-kernels``): the forward at each ``--fwd-configs``
    configuration, and the forward with checkpoints + backward at each ``--bwd-configs`` one, whose gradients are
    checked against the default configuration's."""
    from kernels import gluon_scan, triton_scan
    mod = gluon_scan if args.sweep_kernels == "gluon" else triton_scan
    configs = SWEEPS[args.sweep_kernels]
    u, delta, A, B, C, D = (x.detach() for x in inputs)
    b_fwd, b_all = minimal_bytes(*size)
    y_base, _, ck = mod.scan_fwd(u, delta, A, B, C, D, save_ckpt=True)
    base = mod.scan_bwd(u, delta, A, B, C, D, gy, None, ck)
    for kind in ("fwd", "bwd"):
        for cfg in getattr(args, kind + "_configs") or configs[kind]:
            fcfg, bcfg = cfg, (cfg if mod is triton_scan else (cfg[0], cfg[2], *cfg[3:]))
            if kind == "bwd" and mod is gluon_scan:
                npt, _, warps, stages = gluon_scan.forward_config(A.shape[1], u.shape[-1])
                fcfg = (npt, cfg[1], warps, stages)     # the default forward at the backward's checkpoint interval
            try:
                if kind == "fwd":
                    f_ms = bench(lambda: mod.scan_fwd(u, delta, A, B, C, D, config=fcfg), "cuda")
                    y = mod.scan_fwd(u, delta, A, B, C, D, config=fcfg)[0]
                    agree = float((y - y_base).norm() / y_base.norm())
                    line = (f"fwd {f_ms:.3f} ms ({b_fwd / f_ms / 1e6 / copy_gbs:.0%} of copy); y vs the default "
                            f"configuration: {agree:.1e}")
                else:
                    _, _, ck = mod.scan_fwd(u, delta, A, B, C, D, save_ckpt=True, config=fcfg)
                    fc_ms = bench(lambda: mod.scan_fwd(u, delta, A, B, C, D, save_ckpt=True, config=fcfg), "cuda")
                    b_ms = bench(lambda: mod.scan_bwd(u, delta, A, B, C, D, gy, None, ck, config=bcfg), "cuda")
                    grads = mod.scan_bwd(u, delta, A, B, C, D, gy, None, ck, config=bcfg)
                    agree = max(float((g - r).norm() / r.norm()) for g, r in zip(grads, base) if g is not None)
                    line = (f"fwd+ckpt {fc_ms:.3f} ms, bwd {b_ms:.3f} ms, together "
                            f"{b_all / (fc_ms + b_ms) / 1e6 / copy_gbs:.0%} of copy; gradients vs the default "
                            f"configuration: {agree:.1e}")
            except Exception as e:  # a configuration that does not compile or fit is reported, not fatal
                line = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
            line = f"sweep {args.sweep_kernels} {size} {kind} {cfg}: {line}"
            print(line, flush=True)
            lines.append(line)


def graphed_ms(fn, args, gy):
    """Median ms of forward + backward replayed from a CUDA graph (the launches without the host's work)."""
    static = [a.detach().clone().requires_grad_() for a in args]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):                                     # warm-up: compile, allocate, autotune outside capture
            torch.autograd.grad(fn(*static), static, gy)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        torch.autograd.grad(fn(*static), static, gy)
    return bench(graph.replay, "cuda")


def _graph_row(peers, small):
    batch, dim, nstate, length = small[:4]
    inputs = [a.requires_grad_() for a in make_inputs(batch, dim, nstate, length, "cuda")]
    gy = torch.randn_like(inputs[0])
    row = [f"fwd+bwd at {small[:4]} replayed from a CUDA graph, ms"]
    for name, fn in (("lab", scan_lab), ("mamba_ssm", peers.get("mamba_ssm"))):
        try:
            row.append(f"{graphed_ms(fn, inputs, gy):.3f}" if fn is not None else "not available")
        except Exception as e:  # a method that cannot be captured is reported, not fatal
            row.append(f"not capturable: {type(e).__name__}")
    return "| " + " | ".join(row) + " | |"


def _precision_row(peers, g):
    L = 65536
    A = -(0.5 + torch.rand(8, 4, generator=g))
    u, B, C = torch.randn(1, 8, L, generator=g), torch.randn(1, 4, L, generator=g), torch.randn(1, 4, L, generator=g)
    delta = torch.full((1, 8, L), 1e-8)
    ref = selective_scan_ref(*(x.double() for x in (u, delta, A, B, C)))
    errs = []
    for fn in (scan_lab, peers.get("mamba_ssm")):
        if fn is None:
            errs.append("not available")
            continue
        with torch.no_grad():
            y = fn(*(x.cuda() for x in (u, delta, A, B, C)), torch.zeros(8, device="cuda")).cpu().double()
        errs.append(f"{float((y - ref).norm() / ref.norm()):.1e}")
    return f"| Δ = 1e-8, L = 65 536: rel. error of y | {errs[0]} | {errs[1]} | float64 |"


def _finite_row(label, delta, A, g):
    L = delta.shape[-1]
    u, B, C = (torch.randn(1, s, L, generator=g) for s in (8, 4, 4))
    args = [x.cuda().requires_grad_() for x in (u, delta, A, B, C)]
    y = scan_lab(*args, torch.ones(8, device="cuda", requires_grad=True))
    grads = torch.autograd.grad(y.sum(), args)
    finite = bool(torch.isfinite(y).all()) and all(bool(torch.isfinite(x).all()) for x in grads)
    return f"| {label}: y and every gradient finite | {'yes' if finite else 'NO'} | | finite |"


def _complex_row(g):
    L = 4096
    A = torch.complex(-(0.1 + torch.rand(8, 4, generator=g)), 10.0 * torch.ones(8, 4))
    u, B, C = torch.randn(1, 8, L, generator=g), torch.randn(1, 4, L, generator=g), torch.randn(1, 4, L, generator=g)
    delta = torch.ones(1, 8, L)
    y = selective_scan(*(x.cuda() for x in (u, delta, A, B, C)), backend="triton").cpu().double()
    ref = selective_scan_ref(u.double(), delta.double(), A.to(torch.complex128), B.double(), C.double())
    return (f"| complex A, Im A·Δ = 10 per step, L = 4096: rel. error of y | "
            f"{float((y - ref).norm() / ref.norm()):.1e} (finite: {bool(torch.isfinite(y).all())}) | | float64 |")


def extra_checks(peers, small):
    """The CUDA-graph timing at the smallest size, the precision case and the extreme inputs (module docstring);
    each check reports its own failure rather than ending the run."""
    g = torch.Generator().manual_seed(3)
    checks = [lambda: _graph_row(peers, small), lambda: _precision_row(peers, g),
              lambda: _finite_row("Δ·A = −1e4", torch.full((1, 8, 512), 1e4), -torch.ones(8, 4), g),
              lambda: _finite_row("L = 100 000", 0.01 + 0.2 * torch.rand(1, 8, 100_000, generator=g),
                                  -(0.5 + torch.rand(8, 4, generator=g)), g),
              lambda: _complex_row(g)]
    out = ["| check | lab | mamba_ssm | reference |", "|---|---|---|---|"]
    for check in checks:
        try:
            out.append(check())
        except Exception as e:  # noqa: BLE001 - reported in the table
            out.append(f"| {check.__name__} failed: {type(e).__name__}: {str(e).splitlines()[0][:100]} | | | |")
        print(out[-1], flush=True)
    return out


def format_table(rows, copy_gbs, base):
    head = ("| batch, D, N, L | method | rel. err | fwd ms | fwd GB/s | fwd % copy | fwd+bwd ms | fwd+bwd GB/s "
            f"| fwd+bwd % copy | {base} speed-up fwd | {base} speed-up fwd+bwd |")
    out = [head, "|" + "---|" * 11]
    for size, b_fwd, b_all, results in rows:
        tri = results.get(base, {})
        for name, r in results.items():
            label = ", ".join(map(str, size))
            if "fail" in r:
                out.append(f"| {label} | {name} | {r.get('err', float('nan')):.1e} | {r['fail']} |" + " |" * 7)
                continue
            mark = "~" if r["extrap"] else ""
            su_f = f"{r['fwd'] / tri['fwd']:.1f}×" if "fwd" in tri and name != base else ""
            su_a = f"{r['all'] / tri['all']:.1f}×" if "all" in tri and name != base else ""
            gf, ga = b_fwd / r["fwd"] / 1e6, b_all / r["all"] / 1e6
            out.append(f"| {label} | {name} | {r['err']:.1e} | {mark}{r['fwd']:.3f} | {gf:.0f} | {gf / copy_gbs:.0%} | "
                       f"{mark}{r['all']:.3f} | {ga:.0f} | {ga / copy_gbs:.0%} | {su_f} | {su_a} |")
    return out


def _triton_version():
    try:
        import triton
        return triton.__version__
    except ImportError:
        return "not installed"


def _config(text):
    return tuple(int(v) for v in text.split(","))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--sizes", nargs="*", help="batch,D,N,L[,G] ... (default: the GPU or CPU list)")
    p.add_argument("--extra", action="store_true",
                   help="on CUDA also the CUDA-graph timing, the precision case and the extreme inputs")
    p.add_argument("--verify-batch", type=int, default=2, help="sequences checked against float64 (default 2)")
    p.add_argument("--loop-max-len", type=int, default=256, help="steps of the reference loop actually timed")
    p.add_argument("--tol", type=float, default=1e-4, help="largest relative error that passes verification")
    p.add_argument("--sweep", action="store_true", help="also time the kernels at the SWEEPS configurations")
    p.add_argument("--sweep-kernels", choices=("gluon", "triton"), default="gluon", help="which kernels --sweep times")
    p.add_argument("--sweep-only", action="store_true",
                   help="only the configuration sweep (each configuration checked against the default one)")
    p.add_argument("--fwd-configs", nargs="*", type=_config, help="configurations for --sweep (default SWEEPS)")
    p.add_argument("--bwd-configs", nargs="*", type=_config, help="configurations for --sweep (default SWEEPS)")
    p.add_argument("--methods", nargs="*", help="time only these (gluon triton loop doubling mambapy mamba_ssm)")
    p.add_argument("--base", help="the method the speed-up columns compare to (default gluon on CUDA)")
    p.add_argument("--out", help="also write the report to this file")
    args = p.parse_args(argv)
    if args.device == "cpu" and "TRITON_INTERPRET" not in os.environ:
        sys.exit("benchmarks/scan.py: on the CPU run with TRITON_INTERPRET=1 (the kernels run interpreted)")
    run(args)


if __name__ == "__main__":
    main()
