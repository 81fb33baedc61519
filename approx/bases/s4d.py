"""S4D basis functions g(s) = B · exp(−λ (1 − s)) (eq. 9), realised through the scan, and their λ choices.

Time scale: the whole signal is one unit of time, s ∈ [0, 1], sampled with step Δ = 1/L. On the midpoint grid
exp(−λ(1 − s_i)) = exp(−λ/(2L)) · Π_{r>i} exp(−λ/L): the scan (Δ ≡ 1, eq. 6) gives the suffix product and the
half-cell factor exp(−λ/(2L)) is the basis's B, so the S4D bases are sampled exactly at the midpoints.

N counts *real* basis functions (docs/design.md §3): a complex λ gives two (Re and Im of exp(−λ(1−s))), a real λ one.
"""
from __future__ import annotations

import math

import torch

from signals.grid import check_length
from .scan_form import scan_basis_values


def s4d_basis_complex(lam, L: int, *, backend: str = "auto", dtype=torch.float64, device=None) -> torch.Tensor:
    """Complex values exp(−λ_n (1 − s_i)) of eq. (9) (B = 1) through one scan, batched.

    lam : (…, K) complex (or real) decay rates with Re λ ≥ 0. Returns (…, L, K), complex.
    """
    check_length(L)
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    lam = torch.as_tensor(lam, device=device)
    lam = (lam if lam.dim() else lam.reshape(1)).to(cdtype)
    delta = torch.ones(*lam.shape, L, dtype=dtype, device=device)
    return scan_basis_values(delta, lam, backend=backend) * torch.exp(-lam / (2 * L))[..., None, :]


def s4d_basis(lam, L: int, *, backend: str = "auto", dtype=torch.float64, device=None) -> torch.Tensor:
    """Real S4D basis functions: for each λ_n in order, Re exp(−λ_n(1 − s)) and, if Im λ_n ≠ 0, Im exp(−λ_n(1 − s)).

    Parameters
    ----------
    lam : (K,) complex (or real) decay rates with Re λ ≥ 0.
    L : number of grid points.

    Returns
    -------
    (L, N_real) real tensor, N_real = K + #{n : Im λ_n ≠ 0}.
    """
    lam = torch.as_tensor(lam).reshape(-1)
    g = s4d_basis_complex(lam, L, backend=backend, dtype=dtype, device=device)
    cols = []
    for n in range(lam.shape[0]):
        cols.append(g[:, n].real)
        if lam.is_complex() and lam[n].imag != 0:
            cols.append(g[:, n].imag)
    if not cols:
        return torch.zeros(L, 0, dtype=dtype, device=device)
    return torch.stack(cols, dim=-1)


def s4d_pairs(lam, L: int, n_real: int, *, backend: str = "auto", dtype=torch.float64, device=None) -> torch.Tensor:
    """Re and Im of exp(−λ_k(1 − s)) for each λ_k in turn, the first ``n_real`` columns, batched (the trained
    S4D bases of :mod:`approx.learned`, whose λ move freely). lam : (…, K). Returns (…, L, n_real)."""
    g = s4d_basis_complex(lam, L, backend=backend, dtype=dtype, device=device)
    return torch.stack([g.real, g.imag], -1).flatten(-2)[..., :n_real]


def fourier_lambdas(n: int) -> torch.Tensor:
    """λ_k = −i 2π k, k = 0, 1, …: the Fourier limit of S4D (Sec. 4.1). exp(−λ_k(1 − s)) = exp(−i 2π k s), so the
    real functions are 1, cos 2πks, −sin 2πks. Returns as many λ as n real functions need: ⌈(n − 1)/2⌉ + 1."""
    k = torch.arange(1 + math.ceil(max(n - 1, 0) / 2), dtype=torch.float64)
    return torch.complex(torch.zeros_like(k), -2 * math.pi * k)


def s4d_lin_lambdas(n: int) -> torch.Tensor:
    """S4D-Lin initialisation (Gu et al., 2022, A_k = −½ + iπk): λ_k = ½ + iπk, k = 0, 1, …, on the unit time
    scale of this module (the signal spans one unit of time, Δ = 1/L per sample). λ_k is the conjugate of S4D-Lin's
    −A_k; a conjugate pair spans the same real functions e^{−(1−s)/2}·{cos, sin}(πk(1 − s)). k = 0 is real (one
    function), each k ≥ 1 gives two. Returns ⌈(n − 1)/2⌉ + 1 values."""
    k = torch.arange(1 + math.ceil(max(n - 1, 0) / 2), dtype=torch.float64)
    return torch.complex(torch.full_like(k, 0.5), math.pi * k)
