"""Where the time of a small scan goes on the host (CUDA only): at (16, 64, 16, 128), the Mamba setting, the
milliseconds per call issued (host) and completed (total) of the Gluon forward without gradients, the
forward+backward through autograd, the forward kernel's bare launch and one trivial torch op, then a cProfile of
100 forward+backward calls and of 100 bare launches. At such sizes the GPU finishes long before the host issues
the next call, so these costs, not the kernels, set the eager speed (a CUDA graph removes them).

    python3 benchmarks/host_overhead.py > host-overhead.txt
"""
from __future__ import annotations

import cProfile
import io
import pstats
import time

import torch
import triton

from kernels import gluon_scan
from kernels.autograd import selective_scan_triton

BATCH, DIM, NSTATE, LENGTH = 16, 64, 16, 128


def per_call(fn, calls=300):
    """(host ms, total ms) per call: issued, and completed after a synchronisation."""
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    host = (time.perf_counter() - start) / calls
    torch.cuda.synchronize()
    return host * 1e3, (time.perf_counter() - start) / calls * 1e3


def main():
    gen = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, device="cuda", generator=gen)

    u, dl, B, C = (rand(BATCH, DIM, LENGTH), rand(BATCH, DIM, LENGTH), rand(BATCH, NSTATE, LENGTH),
                   rand(BATCH, NSTATE, LENGTH))
    A, D, dy = -torch.rand(DIM, NSTATE, device="cuda"), rand(DIM), rand(BATCH, DIM, LENGTH)
    leaves = [x.clone().requires_grad_() for x in (u, dl, A, B, C, D)]

    def fwd():
        with torch.no_grad():
            selective_scan_triton(u, dl, A, B, C, D, delta_softplus=True)

    def fwd_bwd():
        selective_scan_triton(*leaves, delta_softplus=True).backward(dy)

    bd, bn, t, warps, layout, _, stages, copy = gluon_scan.plan(DIM, NSTATE, 1, DIM, "fwd", (8, 8, 2, 1))
    y = torch.empty_like(u)

    def launch():
        gluon_scan._fwd_kernel[(BATCH, triton.cdiv(DIM, bd))](
            u, dl, A, B, C, D, y, None, None, DIM, NSTATE, LENGTH, 1, DIM, triton.cdiv(LENGTH, t),
            DELTA_MODE=0, INPUT_DELTA=True, SOFTPLUS=True, HAS_D=True, SAVE_CKPT=False, SAVE_LAST=False,
            BD=bd, BN=bn, T=t, L3=layout, STAGES=stages, LC=copy, num_warps=warps)

    one = torch.zeros(1, device="cuda")
    print(f"(batch, D, N, L) = {(BATCH, DIM, NSTATE, LENGTH)}, {torch.cuda.get_device_name()}, "
          f"torch {torch.__version__}, triton {triton.__version__}")
    for name, fn in (("fwd, no grad", fwd), ("fwd+bwd through autograd", fwd_bwd),
                     ("bare launch of the forward kernel", launch), ("one torch op (add_)", lambda: one.add_(1))):
        print("%-36s host %.4f ms, total %.4f ms" % ((name,) + per_call(fn)))
    for name, fn in (("fwd+bwd", fwd_bwd), ("bare launch", launch)):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(100):
            fn()
        prof.disable()
        torch.cuda.synchronize()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(22)
        print(f"\n{name}, 100 calls:\n{text.getvalue()}")


if __name__ == "__main__":
    main()
