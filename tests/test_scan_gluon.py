"""Gluon scan kernels (kernels/gluon_scan.py) against the float64 reference, and the choice between the kernels.

Gluon cannot run under the Triton interpreter, so the comparisons run on CUDA only (skipped on the CPU; the same
recurrence's Triton kernels are tested on the CPU in test_scan_triton.py). ``kernels="gluon"`` is forced, so a scan
the Gluon kernels refused would fail instead of passing through the Triton kernels. Tolerances as there: y and
h_L 2e-5, gradients 1e-4 (relative, float32 against float64)."""
import pytest
import torch

from kernels import autograd, triton_scan
from tests.test_scan_triton import NAMES, TOL, make_grouped, make_inputs

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="the Gluon kernels run on CUDA only")


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    monkeypatch.setattr(triton_scan, "POISON", True)


def run(args, kernels, seed=1, **opts):
    """(y, h_L, gradients of Σ y·gy + Σ h_L·gh) on the chosen kernels, or on the float64 reference (None)."""
    from kernels import selective_scan
    device = "cpu" if kernels is None else "cuda"
    args = [None if a is None else a.detach().to(device).requires_grad_() for a in args]
    if kernels is None:
        y, h = selective_scan(*args, **opts, return_last_state=True, backend="reference")
    else:
        y, h = autograd.selective_scan_triton(*args, **opts, return_last_state=True, kernels=kernels)
    g = torch.Generator().manual_seed(seed)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(device, y.dtype)
    gh = torch.randn(h.shape, generator=g, dtype=torch.float64).to(device, h.dtype)
    grads = torch.autograd.grad((y * gy).sum() + (h * gh).sum(), [a for a in args if a is not None])
    return (y, h) + grads + ((None,) if args[-1] is None else ())


def compare(args, **opts):
    ref = run([None if a is None else a.double() for a in args], None, **opts)
    out = run(args, "gluon", **opts)
    tol_y, tol_g = TOL[torch.float32]
    for name, o, r in zip(NAMES, out, ref):
        if r is None:
            assert o is None
            continue
        o = o.detach().cpu().double()
        assert o.shape == r.shape, name
        assert torch.isfinite(o).all(), f"{name} has NaN/Inf"
        err = (o - r).norm() / r.norm().clamp_min(1e-300)
        assert err <= (tol_y if name in ("y", "h_L") else tol_g), f"{name}: relative error {err:.2e}"


# N over every state-tile width (1 … 64), odd and one-step lengths, the three Δ modes and the options
CASES = [
    # batch, D, N, L, mode, input_delta, softplus, with_d
    (2, 1, 1, 1, "channel", True, False, True),
    (2, 5, 2, 7, "state", False, True, False),
    (1, 8, 4, 9, "scalar", True, True, True),
    (3, 37, 16, 33, "channel", True, True, True),
    (2, 64, 16, 128, "channel", True, False, True),
    (1, 19, 8, 100, "state", True, False, True),
    (2, 24, 32, 65, "scalar", False, False, True),
    (1, 40, 64, 40, "channel", False, True, False),
    (1, 3, 5, 257, "channel", True, True, True),
]


@needs_cuda
@pytest.mark.parametrize("batch,dim,nstate,length,mode,input_delta,softplus,with_d", CASES)
def test_gluon_matches_reference(batch, dim, nstate, length, mode, input_delta, softplus, with_d):
    args = make_inputs(batch, dim, nstate, length, mode, False, softplus=softplus, with_d=with_d,
                       seed=dim + length)
    compare(args, delta_mode=mode, input_delta=input_delta, delta_softplus=softplus)


@needs_cuda
@pytest.mark.parametrize("groups,per_group,nstate,length,mode", [
    (4, 32, 8, 50, "channel"),            # the trainer's fold: members of d = 32, N = 8, T = 50
    (2, 144, 32, 31, "channel"),          # d = 144, N = 32: blocks of 16 channels
    (3, 64, 16, 20, "state"),
    (2, 32, 4, 17, "scalar"),
])
def test_gluon_grouped_matches_reference(groups, per_group, nstate, length, mode):
    compare(make_grouped(2, groups, per_group, nstate, length, mode, False, seed=groups + length), delta_mode=mode)


@needs_cuda
@pytest.mark.parametrize("stages", [2, 3, 4])
@pytest.mark.parametrize("batch,dim,nstate,length,mode,softplus", [
    (2, 37, 16, 33, "channel", True),     # odd length, a block past D
    (1, 8, 4, 5, "state", False),         # one chunk, fewer than the ring's slots
    (2, 24, 8, 100, "scalar", True),
    (1, 16, 64, 257, "channel", False),
])
def test_gluon_kernels_through_the_input_ring_match_the_direct_loads(batch, dim, nstate, length, mode, softplus,
                                                                     stages):
    """The forward and backward with their inputs copied into a ring of ``stages`` shared-memory slots (cp.async)
    give y, h_L, the chunk-start states and every gradient of the direct loads (stages = 1), and y within 2e-5 of
    float64."""
    from kernels import gluon_scan, selective_scan
    args = make_inputs(batch, dim, nstate, length, mode, False, softplus=softplus, seed=stages + length)
    opts = dict(delta_mode=mode, delta_softplus=softplus)
    cuda = [None if a is None else a.cuda() for a in args]
    bn = min(triton_scan._pow2(nstate), 64)
    (npt, warps, _), (b_npt, b_warps, _) = gluon_scan.CONFIGS["fwd"][bn], gluon_scan.CONFIGS["bwd"][bn]
    gy = torch.randn(cuda[0].shape, generator=torch.Generator().manual_seed(3)).cuda()
    out = {}
    for s in (stages, 1):
        y, h, ckpt = gluon_scan.scan_fwd(*cuda, **opts, return_last_state=True, save_ckpt=True,
                                         config=(npt, gluon_scan.CHUNK, warps, s))
        grads = gluon_scan.scan_bwd(*cuda, gy, None, ckpt, **opts, config=(b_npt, b_warps, s))
        out[s] = (y, h, ckpt[0]) + grads
    for name, a, b in zip(("y", "h_L", "checkpoints") + NAMES[2:], out[stages], out[1]):
        if b is not None:
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
    ref = selective_scan(*[None if a is None else a.double() for a in args], **opts, backend="reference")
    assert ((out[stages][0].cpu().double() - ref).norm() / ref.norm()).item() < TOL[torch.float32][0]


@needs_cuda
def test_gluon_tiny_delta_keeps_its_decay_over_a_long_sequence():
    """Δ = 1e-8 over L = 65 536: a product of per-step factors that round to 1 loses the decay (2.7e-4 relative
    drift); the carry's exponent keeps y within 1e-6 of float64."""
    L = 65536
    A = -(0.5 + torch.rand(3, 1, generator=torch.Generator().manual_seed(8)))
    ones = torch.ones(1, 3, L)
    B = torch.ones(1, 1, L)
    args = [x.cuda() for x in (ones, torch.full_like(ones, 1e-8), A, B, B)]
    y = autograd.selective_scan_triton(*args, input_delta=False, kernels="gluon").cpu().double()
    from kernels import selective_scan
    ref = selective_scan(*[x.cpu().double() for x in args], input_delta=False, backend="reference")
    assert ((y - ref).norm() / ref.norm()).item() < 1e-6


@needs_cuda
def test_gluon_extreme_decay_stays_finite():
    """Δ·A = −1e4 per step: every factor underflows to 0; y and every gradient stay finite."""
    g = torch.Generator().manual_seed(2)
    u, B, C = torch.randn(1, 8, 300, generator=g), torch.randn(1, 4, 300, generator=g), torch.randn(1, 4, 300,
                                                                                                     generator=g)
    args = [x.cuda().requires_grad_() for x in (u, torch.full((1, 8, 300), 1e4), -torch.ones(8, 4), B, C)]
    y = autograd.selective_scan_triton(*args, kernels="gluon")
    grads = torch.autograd.grad(y.sum(), args)
    assert torch.isfinite(y).all() and all(torch.isfinite(x).all() for x in grads)


@needs_cuda
def test_gluon_and_triton_kernels_agree():
    args = [x.cuda() for x in make_inputs(2, 48, 16, 200, "channel", False, seed=5)]
    a = run(args, "gluon", delta_mode="channel")
    b = run(args, "triton", delta_mode="channel")
    for name, x, y in zip(NAMES, a, b):
        assert ((x - y).norm() / y.norm()).item() < 1e-5, name


@pytest.mark.parametrize("nstate", [1, 5, 16, 64, 100])
def test_the_forward_uses_its_input_ring_only_on_long_sequences(nstate):
    """Below RING_MIN_LENGTH steps the forward loads directly (S = 1; the ring's prologue cost more than it hid at
    the trainer's L = 100); from there on it takes CONFIGS' stages, which are > 1 from 8 states (padded) on."""
    from kernels import gluon_scan
    ring = gluon_scan.RING_MIN_LENGTH
    bn = min(triton_scan._pow2(nstate), 64)
    npt, warps, stages = gluon_scan.CONFIGS["fwd"][bn]
    assert gluon_scan.forward_config(nstate, ring - 1) == (npt, gluon_scan.CHUNK, warps, 1)
    assert gluon_scan.forward_config(nstate, ring) == (npt, gluon_scan.CHUNK, warps, stages)
    assert (stages > 1) == (bn >= 8)


def test_gluon_refuses_what_it_does_not_take():
    """Complex A (and any CPU tensor) is not the Gluon kernels' case: forcing them is refused with one line."""
    args = make_inputs(1, 4, 2, 5, "channel", True)
    if CUDA:
        args = [x.cuda() for x in args]
    with pytest.raises(ValueError, match="Gluon kernels take real float32 CUDA scans"):
        autograd.selective_scan_triton(*args, kernels="gluon")


def test_unknown_kernels_are_named():
    with pytest.raises(ValueError, match="'cuda-magic'"):
        autograd.selective_scan_triton(*make_inputs(1, 2, 3, 5, "channel", False), kernels="cuda-magic")
