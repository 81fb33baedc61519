"""Triton scan kernels (kernels/triton_scan.py) against the float64 reference.

On a machine without CUDA the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set here if unset). The
comparisons force the Triton kernels (``kernels="triton"``), which on CUDA would otherwise leave real float32 scans
to the Gluon kernels (tested in test_scan_gluon.py); the dispatch tests go through kernels.selective_scan.
Every output the kernels must write is poisoned with NaN first (triton_scan.POISON), so an unwritten element fails.

Tolerances (‖out − ref‖ / ‖ref‖, the reference in float64 on float64 copies of the same inputs):
float32 inputs: y and h_L 2e-5, gradients 1e-4 (sums over L and the batch); float64 inputs: 1e-11.
"""
import os
import subprocess
import sys

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from kernels import selective_scan  # noqa: E402
from kernels import triton_scan  # noqa: E402
from kernels.autograd import selective_scan_triton  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: (2e-5, 1e-4), torch.float64: (1e-11, 1e-11)}
NAMES = ("y", "h_L", "du", "ddelta", "dA", "dB", "dC", "dD")


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    monkeypatch.setattr(triton_scan, "POISON", True)


def make_inputs(batch, dim, nstate, length, mode, cplx, *, dtype=torch.float32, seed=0, softplus=False,
                with_d=True):
    """Random scan arguments, Δ positive (or any sign before a softplus), Re A < 0."""
    g = torch.Generator().manual_seed(seed)
    cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
    dshape = {"channel": (batch, dim, length), "state": (batch, nstate, length), "scalar": (batch, length)}[mode]
    u = torch.randn(batch, dim, length, generator=g, dtype=dtype)
    delta = torch.randn(dshape, generator=g, dtype=dtype) if softplus else \
        0.05 + torch.rand(dshape, generator=g, dtype=dtype)
    A = -(0.1 + torch.rand(dim, nstate, generator=g, dtype=dtype))
    B = torch.randn(batch, nstate, length, generator=g, dtype=dtype)
    C = torch.randn(batch, nstate, length, generator=g, dtype=dtype)
    if cplx:
        A = torch.complex(A, 3 * torch.randn(dim, nstate, generator=g, dtype=dtype))
        B = torch.complex(B, torch.randn(batch, nstate, length, generator=g, dtype=dtype)).to(cdt)
        C = torch.complex(C, torch.randn(batch, nstate, length, generator=g, dtype=dtype)).to(cdt)
    D = torch.randn(dim, generator=g, dtype=dtype) if with_d else None
    return u, delta, A, B, C, D


def _as_real(x):
    return torch.view_as_real(x) if x.is_complex() else x


def run(args, backend, device, seed=1, **opts):
    """(y, h_L, grads of Σ y·gy + Σ h_L·gh for every input) for one backend."""
    args = [None if a is None else a.detach().to(device).requires_grad_() for a in args]
    if backend == "triton":
        y, h = selective_scan_triton(*args, **opts, return_last_state=True, kernels="triton")
    else:
        y, h = selective_scan(*args, **opts, return_last_state=True, backend=backend)
    g = torch.Generator().manual_seed(seed)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(device, y.dtype)
    gh = torch.randn(_as_real(h).shape, generator=g, dtype=torch.float64).to(device, _as_real(h).dtype)
    loss = (y * gy).sum() + (_as_real(h) * gh).sum()
    grads = torch.autograd.grad(loss, [a for a in args if a is not None])
    if args[-1] is None:
        grads = grads + (None,)
    return (y, h) + grads


def compare(args, dtype, **opts):
    ref = run([None if a is None else a.to(torch.complex128 if a.is_complex() else torch.float64) for a in args],
              "reference", "cpu", **opts)
    out = run(args, "triton", DEVICE, **opts)
    tol_y, tol_g = TOL[dtype]
    cplx = any(a.is_complex() for a in args[2:5])
    state = {torch.float32: torch.complex64, torch.float64: torch.complex128}[dtype] if cplx else dtype
    dtypes = [dtype, state] + [None if a is None else a.dtype for a in args]
    for name, o, r, want in zip(NAMES, out, ref, dtypes):
        if r is None:
            assert o is None
            continue
        o = o.detach().cpu()
        assert o.shape == r.shape and o.dtype == want, f"{name}: {o.dtype} {tuple(o.shape)}"
        assert torch.isfinite(_as_real(o)).all(), f"{name} has NaN/Inf"
        err = (_as_real(o).double() - _as_real(r)).norm() / _as_real(r).norm().clamp_min(1e-300)
        tol = tol_y if name in ("y", "h_L") else tol_g
        assert err <= tol, f"{name}: relative error {err:.2e} > {tol:.0e}"


# A pairwise cover of L ∈ {1, 7, 64, 257}, N ∈ {1, 4, 16}, D ∈ {1, 3, 8}, the three Δ modes and real/complex A;
# the options (input_delta, softplus, D) vary along it.
GRID = [
    # batch, D, N, L, mode, complex, input_delta, softplus, with_d
    (2, 1, 1, 1, "channel", False, True, False, True),
    (2, 3, 4, 1, "state", True, False, True, False),
    (1, 8, 16, 1, "scalar", False, True, True, True),
    (2, 3, 1, 7, "scalar", True, True, False, True),
    (1, 8, 4, 7, "channel", False, False, True, True),
    (2, 1, 16, 7, "state", False, True, False, False),
    (1, 8, 1, 64, "state", True, True, True, True),
    (2, 1, 4, 64, "scalar", False, False, False, True),
    (1, 3, 16, 64, "channel", True, True, True, False),
    (1, 1, 16, 257, "channel", True, False, False, True),
    (1, 8, 1, 257, "channel", False, True, True, True),
    (1, 3, 4, 257, "state", False, True, True, True),
    (1, 3, 1, 257, "scalar", True, True, True, False),
]


@pytest.mark.parametrize("batch,dim,nstate,length,mode,cplx,input_delta,softplus,with_d", GRID)
def test_matches_reference_float32(batch, dim, nstate, length, mode, cplx, input_delta, softplus, with_d):
    args = make_inputs(batch, dim, nstate, length, mode, cplx, softplus=softplus, with_d=with_d)
    compare(args, torch.float32, delta_mode=mode, input_delta=input_delta, delta_softplus=softplus)


@pytest.mark.parametrize("mode,cplx", [("channel", True), ("state", False), ("scalar", True)])
def test_matches_reference_float64(mode, cplx):
    args = make_inputs(2, 3, 4, 23, mode, cplx, dtype=torch.float64, softplus=True, seed=5)
    compare(args, torch.float64, delta_mode=mode, delta_softplus=True)


@pytest.mark.parametrize("mode,cplx", [("channel", False), ("state", True), ("scalar", False)])
def test_heaviside_limit_large_negative_w(mode, cplx):
    """Δ = softplus(w (r − t̂)) with w = −1e4 (eqs. 20-22): a → 0 after t̂, Δ·A down to about −1e4."""
    batch, dim, nstate, length = 1, 3, 4, 40
    u, delta, A, B, C, D = make_inputs(batch, dim, nstate, length, mode, cplx, softplus=True, seed=3)
    r = (torch.arange(length, dtype=torch.float32) + 0.5) / length
    that = torch.rand(delta.shape[:-1] + (1,), generator=torch.Generator().manual_seed(4))
    delta = -1e4 * (r - that)
    compare((u, delta, A, B, C, D), torch.float32, delta_mode=mode, delta_softplus=True)


@pytest.mark.parametrize("cplx", [False, True])
def test_small_delta_long_sequence(cplx):
    """Δ → 0: a = exp(Δ·A) → 1 and the state integrates the input over the whole sequence."""
    u, delta, A, B, C, D = make_inputs(1, 2, 2, 200, "channel", cplx, seed=6)
    compare((u, delta * 1e-6, A, B, C, D), torch.float32, delta_mode="channel", input_delta=False)


def test_without_last_state_and_grad():
    u, delta, A, B, C, D = (x.to(DEVICE) for x in make_inputs(2, 3, 4, 20, "channel", False))
    y = selective_scan(u, delta, A, B, C, D, backend="triton")
    ref = selective_scan(u.cpu().double(), delta.cpu().double(), A.cpu().double(), B.cpu().double(),
                         C.cpu().double(), D.cpu().double(), backend="reference")
    assert ((y.cpu().double() - ref).norm() / ref.norm()) < 2e-5


def test_auto_backend_on_cpu_is_the_reference():
    args = make_inputs(1, 2, 3, 5, "state", True)
    assert torch.equal(selective_scan(*args, delta_mode="state"),
                       selective_scan(*args, delta_mode="state", backend="reference"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU tensors only")
def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        selective_scan(*make_inputs(1, 2, 3, 5, "channel", False), backend="triton")


def test_bad_backend_is_named():
    with pytest.raises(ValueError, match="'cuda-magic'"):
        selective_scan(*make_inputs(1, 2, 3, 5, "channel", False), backend="cuda-magic")


def test_kernels_import_without_triton():
    code = ("import sys; sys.modules['triton'] = None\n"
            "import torch, kernels\n"
            "u = torch.ones(1, 2, 3); A = -torch.ones(2, 2); B = torch.ones(1, 2, 3)\n"
            "y = kernels.selective_scan(u, u, A, B, B)\n"
            "assert y.shape == (1, 2, 3)\n"
            "try:\n"
            "    kernels.selective_scan(u, u, A, B, B, backend='triton')\n"
            "except ValueError as e:\n"
            "    assert 'triton' in str(e)\n"
            "else:\n"
            "    raise SystemExit('no ValueError')\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    res = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def make_grouped(batch, groups, per_group, nstate, length, mode, cplx, *, dtype=torch.float32, seed=0):
    """Scan arguments with grouped B, C (batch, G, N, L) and, in the state/scalar modes, grouped Δ."""
    dim = groups * per_group
    u, delta, A, B, C, D = make_inputs(batch, dim, nstate, length, "channel", cplx, dtype=dtype, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    B = torch.randn(batch, groups, nstate, length, generator=g, dtype=dtype).to(B.dtype)
    C = torch.randn(batch, groups, nstate, length, generator=g, dtype=dtype).to(C.dtype)
    if mode != "channel":
        shape = (batch, groups, nstate, length) if mode == "state" else (batch, groups, length)
        delta = 0.05 + torch.rand(shape, generator=g, dtype=dtype)
    return u, delta, A, B, C, D


@pytest.mark.parametrize("groups,per_group,nstate,length,mode,cplx", [
    (3, 2, 4, 37, "channel", False),      # blocks of 2 channels, odd L
    (4, 4, 4, 30, "channel", False),      # an ensemble of 4 models of d = 4 (the trainer's fold)
    (2, 3, 1, 20, "state", True),         # odd channels per group: blocks of one channel
    (2, 4, 4, 17, "scalar", False),
    (1, 5, 4, 9, "state", False),         # one group: the same as ungrouped
])
def test_grouped_B_C_match_reference(groups, per_group, nstate, length, mode, cplx):
    args = make_grouped(2, groups, per_group, nstate, length, mode, cplx, seed=groups + length)
    compare(args, torch.float32, delta_mode=mode)


def test_tiny_delta_keeps_its_decay_over_a_long_sequence():
    """Δ = 1e-8 and A ~ −1 round exp(Δ·A) to exactly 1 in float32: a product of per-step factors never decays
    (relative error 2.2e-5 at L = 4096, growing with L). The kernels keep the carry's decay as an exponent and
    its sum compensated, so the integrator y_t = Σ_s exp(A·Δ·(t − s)) stays within 1e-6 of the float64 reference
    (measured 4e-8)."""
    L = 4096
    A = -(0.5 + torch.rand(3, 1, generator=torch.Generator().manual_seed(8)))
    ones = torch.ones(1, 3, L)
    B = torch.ones(1, 1, L)
    args = [x.to(DEVICE) for x in (ones, torch.full_like(ones, 1e-8), A, B, B)]
    y = selective_scan(*args, input_delta=False, backend="triton").cpu().double()
    ref = selective_scan(*[x.cpu().double() for x in args], input_delta=False, backend="reference")
    assert ((y - ref).norm() / ref.norm()).item() < 1e-6
