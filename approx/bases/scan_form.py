"""Basis functions realised through the scan engine (docs/design.md §2-3).

Every basis of Sec. 4.1 has the form g_n(s_i) = B_n · Π_{r>i} a_{n,r} with a_{n,r} = exp(−λ_n Δ_n(r) / L):
eq. (8) on the grid, g_n(s_i) = B_n exp(−(λ_n/L) Σ_{r>i} Δ_n(x̃_r)), and eq. (9) for Δ ≡ 1. Two scans compute it:

- :func:`scan_basis_values` — the *values* g_n(s_i), as one scan of the time-reversed sequence driven by an impulse.
  With k = L + 1 − i, feed ã_k = a_{L+2−k} (k ≥ 2; ã_1 multiplies the zero initial state and is irrelevant) and
  u = (1, 0, …, 0); then h_k = Π_{r=L+2−k}^{L} a_r = Π_{r>i} a_r, and flipping h back gives g on the grid.
- :func:`scan_inner_products` — the *projections* h_n(1) = ⟨g_n, x⟩ of eq. (8): the forward scan in basis form,
  h_t = a_t h_{t−1} + B_n x_t / L (no Δ factor on the input), whose last state is (1/L) Σ_i g_n(s_i) x_i exactly.

Both batch every basis of a fit into one scan call.
"""
from __future__ import annotations

import math

import torch

from kernels import selective_scan


def _lam_vector(lam, shape, device) -> torch.Tensor:
    lam = torch.as_tensor(lam, device=device)
    if not lam.is_complex():
        lam = lam.to(torch.float64)
    if bool((lam.real < 0).any()):
        raise ValueError("the decay rates lam must have non-negative real part (stability, Re(−λ) ≤ 0)")
    return lam.broadcast_to(shape)


def scan_basis_values(delta: torch.Tensor, lam=1.0, *, backend: str = "auto") -> torch.Tensor:
    """Values g_n(s_i) = exp(−(λ_n / L) Σ_{r>i} Δ_n(r)) (unit B_n) of eq. (8) through one time-reversed scan.

    Parameters
    ----------
    delta : (…, K, L) real tensor, Δ_n at the steps r = 1..L (Δ ≡ 1 gives the S4D bases of eq. (9) up to the
        half-cell factor, see :func:`approx.bases.s4d.s4d_basis`).
    lam : scalar, (K,) or (…, K) decay rates λ_n, real or complex with Re λ ≥ 0 (the state matrix is A = −λ).
    backend : scan backend (``"auto"``, ``"reference"``, ``"triton"``).

    Returns
    -------
    (…, L, K) tensor of basis values, real for real λ, complex (Re + i·Im of the state) for complex λ.
    """
    if delta.dim() < 2:
        raise ValueError(f"delta must have shape (…, K, L), got {tuple(delta.shape)}")
    shape, L = delta.shape[:-1], delta.shape[-1]
    lam = _lam_vector(lam, shape, delta.device)
    D = math.prod(shape)
    if D == 0:
        return delta.new_zeros(*shape[:-1], L, shape[-1])
    step = delta.reshape(1, D, L) / L
    rev = torch.cat([torch.zeros_like(step[..., :1]), step.flip(-1)[..., : L - 1]], dim=-1)
    u = torch.zeros_like(step)
    u[..., 0] = 1.0
    A = (-lam).reshape(D, 1)
    if A.is_complex():
        A = A.to(torch.complex128 if delta.dtype == torch.float64 else torch.complex64)
        # two batch rows read the state's real part (C = 1) and imaginary part (C = −i): y = Re(C h)
        C = torch.tensor([1.0, -1j], dtype=A.dtype, device=delta.device).reshape(2, 1, 1).expand(2, 1, L)
        B = torch.ones(2, 1, L, dtype=A.dtype, device=delta.device)
        y = selective_scan(u.expand(2, D, L), rev.expand(2, D, L), A, B, C, delta_mode="channel",
                           input_delta=False, backend=backend)
        y = torch.complex(y[0], y[1]).unsqueeze(0)
    else:
        A = A.to(delta.dtype)
        ones = torch.ones(1, 1, L, dtype=delta.dtype, device=delta.device)
        y = selective_scan(u, rev, A, ones, ones, delta_mode="channel", input_delta=False, backend=backend)
    return y[0].flip(-1).reshape(*shape, L).transpose(-1, -2)


def scan_inner_products(x: torch.Tensor, delta: torch.Tensor, lam=1.0, B=1.0, *,
                        backend: str = "auto") -> torch.Tensor:
    """h_n(1) = ⟨g_n, x⟩ of eq. (8): the forward scan in basis form, run on the signal.

    h_t[n] = exp(−λ_n Δ_n(t) / L) h_{t−1}[n] + B_n x_t / L  (``delta_mode="state"``, ``input_delta=False``),
    so h_L[n] = (1/L) Σ_i B_n Π_{r>i} exp(−λ_n Δ_n(r)/L) x_i = ⟨g_n, x⟩ in the grid inner product (docs/design.md §1).

    Parameters
    ----------
    x : (…, L) real signal.
    delta : (…, K, L) or (K, L) real, Δ_n(r).
    lam : scalar or (K,) decay rates (real or complex, Re λ ≥ 0).
    B : scalar or (K,) input weights B_n.

    Returns
    -------
    (…, K) tensor, complex when λ or B is.
    """
    L = x.shape[-1]
    if delta.shape[-1] != L:
        raise ValueError(f"delta has {delta.shape[-1]} steps but the signal has {L}")
    K = delta.shape[-2]
    lead = torch.broadcast_shapes(x.shape[:-1], delta.shape[:-2])
    batch = math.prod(lead)
    lam = _lam_vector(lam, (K,), x.device)
    Bv = torch.as_tensor(B, device=x.device).broadcast_to((K,))
    cplx = lam.is_complex() or Bv.is_complex()
    cdtype = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    A = (-lam).reshape(1, K).to(cdtype if cplx else x.dtype)
    Bt = Bv.to(cdtype if cplx else x.dtype).reshape(1, K, 1).expand(batch, K, L)
    u = (x / L).broadcast_to(*lead, L).reshape(batch, 1, L)
    d = (delta / L).broadcast_to(*lead, K, L).reshape(batch, K, L)
    _, h = selective_scan(u, d, A, Bt, torch.ones_like(Bt), delta_mode="state", input_delta=False,
                          return_last_state=True, backend=backend)
    return h[:, 0, :].reshape(*lead, K)
