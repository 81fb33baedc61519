"""The PyTorch reference scan (kernels/reference.py) against an independent naive float64 loop and closed forms.

The naive loop below works on Python scalars, one (batch, channel, state) at a time, straight from the recurrence
of docs/design.md §2 (eqs. (2)-(5), Δ per channel eq. (14f), per state eq. (15), scalar Mamba-2):

    h_t = exp(Δ_t A) h_{t−1} + (Δ_t | 1) u_t B_t,   y_t = Re Σ_n C_t h_t + D u_t.
"""
import cmath
import math

import numpy as np
import pytest
import torch

from kernels import selective_scan, selective_scan_ref


def naive_scan(u, delta, A, B, C, D, mode, input_delta, softplus):
    """(y, h_L) by nested Python loops over batch, channel, state and time, in float64/complex128.

    Grouped B, C (batch, G, N, L): channel d reads group d // (D / G), as do Δ of the state and scalar modes."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    if B.dim() == 3:                                     # one group: the grouped indexing below with G = 1
        B, C = B[:, None], C[:, None]
        delta = delta[:, None] if mode in ("state", "scalar") else delta
    per = dim // B.shape[1]
    y = np.zeros((batch, dim, length))
    h_last = np.zeros((batch, dim, nstate), dtype=complex)
    for b in range(batch):
        for d in range(dim):
            for t in range(length):
                y[b, d, t] = (float(D[d]) * float(u[b, d, t])) if D is not None else 0.0
            for n in range(nstate):
                h = 0j
                for t in range(length):
                    g = d // per
                    raw = {"channel": lambda: delta[b, d, t], "state": lambda: delta[b, g, n, t],
                           "scalar": lambda: delta[b, g, t]}[mode]()
                    dt = float(raw)
                    if softplus:
                        dt = math.log1p(math.exp(dt)) if dt < 30 else dt
                    a = complex(A[d, n])
                    drive = (dt if input_delta else 1.0) * float(u[b, d, t]) * complex(B[b, g, n, t])
                    h = cmath.exp(dt * a) * h + drive
                    y[b, d, t] += (complex(C[b, g, n, t]) * h).real
                h_last[b, d, n] = h
    return y, h_last


def make(batch, dim, nstate, length, mode, cplx, seed, softplus=False, groups=0):
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    gr = (groups,) if groups else ()
    dshape = {"channel": (batch, dim, length), "state": (batch, *gr, nstate, length),
              "scalar": (batch, *gr, length)}[mode]
    u = torch.randn(batch, dim, length, generator=g, dtype=f64)
    delta = torch.randn(dshape, generator=g, dtype=f64) if softplus else 0.05 + torch.rand(dshape, generator=g,
                                                                                            dtype=f64)
    A = -(0.1 + torch.rand(dim, nstate, generator=g, dtype=f64))
    bshape = (batch, *gr, nstate, length)
    B = torch.randn(bshape, generator=g, dtype=f64)
    C = torch.randn(bshape, generator=g, dtype=f64)
    if cplx:
        A = torch.complex(A, 2 * torch.randn(dim, nstate, generator=g, dtype=f64))
        B = torch.complex(B, torch.randn(bshape, generator=g, dtype=f64))
        C = torch.complex(C, torch.randn(bshape, generator=g, dtype=f64))
    D = torch.randn(dim, generator=g, dtype=f64)
    return u, delta, A, B, C, D


CASES = [
    # batch, D, N, L, mode, complex, input_delta, softplus, with_d
    (2, 3, 1, 9, "channel", False, True, False, True),
    (1, 2, 3, 7, "channel", True, False, True, False),
    (2, 2, 3, 5, "state", False, False, False, True),
    (1, 3, 2, 11, "state", True, True, True, True),
    (2, 2, 2, 1, "scalar", False, True, True, False),
    (1, 2, 4, 13, "scalar", True, False, False, True),
]


@pytest.mark.parametrize("batch,dim,nstate,length,mode,cplx,input_delta,softplus,with_d", CASES)
def test_reference_matches_naive_loop(batch, dim, nstate, length, mode, cplx, input_delta, softplus, with_d):
    u, delta, A, B, C, D = make(batch, dim, nstate, length, mode, cplx, seed=length, softplus=softplus)
    D = D if with_d else None
    y, h = selective_scan_ref(u, delta, A, B, C, D, delta_mode=mode, input_delta=input_delta,
                              delta_softplus=softplus, return_last_state=True)
    y_naive, h_naive = naive_scan(u, delta, A, B, C, D, mode, input_delta, softplus)
    np.testing.assert_allclose(y.numpy(), y_naive, rtol=1e-12, atol=1e-12)
    h_np = h.numpy() if h.is_complex() else h.numpy().astype(complex)
    np.testing.assert_allclose(h_np, h_naive, rtol=1e-12, atol=1e-12)
    assert y.dtype == torch.float64 and h.is_complex() == cplx


@pytest.mark.parametrize("cplx", [False, True])
def test_s4d_is_a_convolution(cplx):
    """Δ ≡ 1, constant B and C, no Δ on the input (S4D, eq. 6): y = K * u with K_k = Re Σ_n C_n B_n e^{A_n k}."""
    length, nstate = 17, 3
    g = torch.Generator().manual_seed(7)
    A = -(0.2 + torch.rand(1, nstate, generator=g, dtype=torch.float64))
    if cplx:
        A = torch.complex(A, torch.randn(1, nstate, generator=g, dtype=torch.float64))
    b = torch.randn(nstate, generator=g, dtype=torch.float64)
    c = torch.randn(nstate, generator=g, dtype=torch.float64)
    u = torch.randn(1, 1, length, generator=g, dtype=torch.float64)
    y = selective_scan(u, torch.ones(1, length, dtype=torch.float64), A, b[None, :, None].expand(1, nstate, length),
                       c[None, :, None].expand(1, nstate, length), delta_mode="scalar", input_delta=False)
    k = np.arange(length)
    kernel = np.real((c.numpy() * b.numpy())[:, None] * np.exp(A.numpy()[0][:, None] * k[None, :])).sum(0)
    expected = np.convolve(u.numpy()[0, 0], kernel)[:length]
    np.testing.assert_allclose(y.numpy()[0, 0], expected, rtol=1e-12, atol=1e-12)


def test_heaviside_limit_is_finite_and_exact():
    """softplus(w (r − t̂)) with w = −1e4: a = 0 after t̂ to double precision, so h_t = b_t there."""
    length = 32
    r = (torch.arange(length, dtype=torch.float64) + 0.5) / length
    delta = (-1e4 * (r - 0.5))[None, None, :]
    u = torch.ones(1, 1, length, dtype=torch.float64)
    A = -torch.ones(1, 1, dtype=torch.float64)
    B = torch.ones(1, 1, length, dtype=torch.float64)
    y = selective_scan_ref(u, delta, A, B, B, delta_softplus=True)
    assert torch.isfinite(y).all()
    dt = torch.nn.functional.softplus(delta)[0, 0]
    big = r < 0.5  # Δ ≈ 1e4 (r − t̂) ≫ 1: exp(−Δ) = 0, so h_t = Δ_t u_t B_t
    torch.testing.assert_close(y[0, 0, big], dt[big], rtol=1e-12, atol=0)


@pytest.mark.parametrize("mode,cplx,softplus,input_delta", [("channel", False, True, True),
                                                            ("state", True, False, False),
                                                            ("scalar", True, True, True)])
def test_reference_gradcheck(mode, cplx, softplus, input_delta):
    args = [x.requires_grad_() for x in make(1, 2, 2, 4, mode, cplx, seed=11, softplus=softplus)]

    def f(*xs):
        y, h = selective_scan_ref(*xs, delta_mode=mode, input_delta=input_delta, delta_softplus=softplus,
                                  return_last_state=True)
        return y, torch.view_as_real(h) if h.is_complex() else h
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["channel", "state", "scalar"])
@pytest.mark.parametrize("groups,dim", [(1, 3), (2, 4), (3, 3), (2, 6)])
def test_grouped_B_C_match_naive_loop(mode, groups, dim):
    """Grouped B, C (batch, G, N, L): channel d reads group d // (D/G); state/scalar Δ grouped alike."""
    u, delta, A, B, C, D = make(2, dim, 3, 9, mode, cplx=(groups == 2), seed=groups + dim, groups=groups)
    y, h = selective_scan_ref(u, delta, A, B, C, D, delta_mode=mode, return_last_state=True)
    y_ref, h_ref = naive_scan(u.numpy(), delta.numpy(), A.numpy(), B, C, D.numpy(), mode, True, False)
    assert np.allclose(y.numpy(), y_ref, rtol=1e-12, atol=1e-12)
    assert np.allclose(h.numpy(), h_ref, rtol=1e-12, atol=1e-12)


def test_grouped_equals_each_group_run_alone():
    """A grouped scan is G independent scans on the channel slices (the ensemble fold of the trainer)."""
    u, delta, A, B, C, D = make(2, 6, 4, 11, "channel", cplx=False, seed=5, groups=3)
    y = selective_scan_ref(u, delta, A, B, C, D)
    for g in range(3):
        s = slice(2 * g, 2 * g + 2)
        y_g = selective_scan_ref(u[:, s], delta[:, s], A[s], B[:, g], C[:, g], D[s])
        assert torch.allclose(y[:, s], y_g, rtol=0, atol=1e-14)


@pytest.mark.parametrize("bad,match", [
    (dict(B=torch.zeros(2, 4, 3, 5)), "must divide D"),
    (dict(C=torch.zeros(2, 3, 5)), "C must have shape"),
    (dict(delta=torch.zeros(2, 3, 5), delta_mode="state"), "delta for delta_mode='state'"),
])
def test_grouped_shapes_are_checked(bad, match):
    args = dict(u=torch.zeros(2, 6, 5), delta=torch.zeros(2, 6, 5), A=torch.zeros(6, 3),
                B=torch.zeros(2, 2, 3, 5), C=torch.zeros(2, 2, 3, 5), delta_mode="channel")
    if "B" in bad and "C" not in bad:
        args["C"] = bad["B"]
    args.update(bad)
    mode = args.pop("delta_mode")
    with pytest.raises(ValueError, match=match):
        selective_scan_ref(args["u"], args["delta"], args["A"], args["B"], args["C"], delta_mode=mode)
