"""Registers and spills of the Gluon scan kernels, compiled for sm_90a on a machine without a GPU.

Each case is compiled by ``triton.compile`` with an explicit target (Hopper, no driver needed) from the same
kernel and launch plan the lab uses (:func:`kernels.gluon_scan.plan`); the cubin's resource usage is read with
the ``cuobjdump`` that Triton ships. ``REG`` is registers per thread (255 at most), ``STACK`` the bytes per thread
spilled to local memory (0 is the aim). A case is ``kernel,D,N,G,mode,NPT,T,W[,S]``: the forward (``fwd``) or
backward (``bwd``), D channels in G groups (B, C grouped per member), N states, Δ mode ``channel``, ``state`` or
``scalar``, and the configuration (states per thread, chunk length, warps, input-ring stages).

    python benchmarks/registers.py                       # the default cases: the trainer's and the figures' sizes
    python benchmarks/registers.py fwd,480,160,5,state,8,4,2,1

The numbers are those of the Triton installed here, which may differ from the GPU machine's; they tell which
configurations spill before any GPU time is spent, not how fast they run.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.experimental.gluon._runtime import GluonASTSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels import gluon_scan  # noqa: E402
from kernels.triton_scan import DELTA_MODE_ID  # noqa: E402

#: the trainer's Mamba (64 members of d = 32, N = 8 and 16·9216 channels of N = 32) and Fig. 3's slowest group
#: (Mamba-Δ⊤, 5 members of d = 96, N = 160), each kernel at the default configuration and chunk 4
DEFAULT_CASES = ["fwd,2048,8,64,channel,8,8,2,1", "bwd,2048,8,64,channel,4,8,2,1",
                 "fwd,9216,32,64,channel,8,8,2,1", "bwd,9216,32,64,channel,4,8,2,1",
                 "fwd,480,160,5,state,8,8,2,1", "bwd,480,160,5,state,4,8,2,1",
                 "fwd,480,160,5,state,8,4,2,1", "bwd,480,160,5,state,4,4,2,1"]
POINTERS = {"fwd": ("u", "dlt", "Ar", "Bp", "Cp", "Dv", "y"),
            "bwd": ("u", "dlt", "Ar", "Bp", "Cp", "Dv", "dy", "ck", "du", "ddlt", "dA", "dB", "dC", "dD")}
ABSENT = {"fwd": ("h_out", "ck"), "bwd": ("dh",)}
INTS = ("D", "N", "L", "G", "CPG", "n_chunks")


def parse_case(case: str) -> tuple:
    """``kernel,D,N,G,mode,NPT,T,W[,S]`` → (case, kind, D, N, G, mode, config, plan); argparse reports a bad one."""
    try:
        kind, dim, nstate, groups, mode, *config = case.split(",")
        dim, nstate, groups, config = int(dim), int(nstate), int(groups), tuple(int(c) for c in config)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{case!r} is not kernel,D,N,G,mode,NPT,T,W[,S]") from None
    if kind not in POINTERS or mode not in DELTA_MODE_ID or len(config) not in (3, 4) or min(dim, nstate, groups) < 1 \
            or dim % groups or min(config) < 1:
        raise argparse.ArgumentTypeError(f"{case!r}: kernel fwd|bwd, mode {'|'.join(DELTA_MODE_ID)}, G dividing D, "
                                         "and three or four positive configuration numbers")
    planned = gluon_scan.plan(dim, nstate, groups, dim // groups, kind, config)
    if planned is None:
        raise argparse.ArgumentTypeError(f"{case!r}: the Gluon kernels do not take this shape")
    return case, kind, dim, nstate, groups, mode, config, planned


def compile_case(parsed: tuple) -> dict:
    case, kind, dim, nstate, groups, mode, config, planned = parsed
    bd, bn, t, warps, layout, reduce, stages, copy = planned
    fn = gluon_scan._fwd_kernel if kind == "fwd" else gluon_scan._bwd_kernel
    names = fn.arg_names
    # as the lab's models: Δ in the input term except for Mamba-Δ⊤ (Δ per state)
    constexprs = {"DELTA_MODE": DELTA_MODE_ID[mode], "INPUT_DELTA": mode != "state", "SOFTPLUS": False,
                  "HAS_D": True, "BD": bd, "BN": bn, "T": t, "L3": layout, "STAGES": stages, "LC": copy}
    constexprs.update({"SAVE_CKPT": False, "SAVE_LAST": False} if kind == "fwd" else {"HAS_DH": False, "LR": reduce})
    constexprs.update(dict.fromkeys(ABSENT[kind]))
    signature = {n: "*fp32" if n in POINTERS[kind] else "i32" if n in INTS else "constexpr" for n in names}
    source = GluonASTSource(fn, signature, {(names.index(k),): v for k, v in constexprs.items()})
    kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
    with tempfile.NamedTemporaryFile("wb", suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        usage = subprocess.run([str(tool), "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
    found = dict(re.findall(r"(REG|STACK|SHARED):(\d+)", usage))
    return {"case": case, "BD": bd, "BN": bn, "warps": warps, **{k: int(v) for k, v in found.items()}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("cases", nargs="*", type=parse_case, default=[parse_case(c) for c in DEFAULT_CASES],
                   help="kernel,D,N,G,mode,NPT,T,W[,S]")
    args = p.parse_args(argv)
    print(f"Gluon scan kernels compiled for sm_90a by triton {triton.__version__} (no GPU)\n")
    print(f"{'case':<34} {'BD':>4} {'BN':>4} {'W':>2} {'REG':>4} {'STACK':>6} {'SHARED':>7}")
    for parsed in args.cases:
        r = compile_case(parsed)
        print(f"{r['case']:<34} {r['BD']:>4} {r['BN']:>4} {r['warps']:>2} {r.get('REG', '?'):>4} {r.get('STACK', '?'):>6} "
              f"{r.get('SHARED', '?'):>7}")


if __name__ == "__main__":
    main()
