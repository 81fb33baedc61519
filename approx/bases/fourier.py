"""The ideal (real) Fourier dictionary on the grid, computed with the FFT.

Real functions in dictionary order: 1, cos 2πs, sin 2πs, cos 4πs, sin 4πs, …, i.e. index 0 is k = 0 and index
2k − 1, 2k are cos 2πks, sin 2πks. Only frequencies below Nyquist (k < L/2) are used, where the functions are
orthogonal on the midpoint grid with ‖1‖² = 1 and ‖cos‖² = ‖sin‖² = ½: at most :func:`max_fourier_terms` (L − 1
for even L, L for odd L) real functions. N counts real functions (DESIGN §3). The partial sum with N functions is
the first N of this order; the best N-term choice keeps the N largest ⟨x, f⟩²/‖f‖².
"""
from __future__ import annotations

import math

import torch

from signals.grid import check_length, midpoints


def max_fourier_terms(L: int) -> int:
    """Number of real Fourier functions below Nyquist on a grid of L points: L − 1 (L even) or L (L odd)."""
    check_length(L)
    return L - 1 if L % 2 == 0 else L


def check_fourier_terms(n: int, L: int) -> int:
    """Validate a number of real Fourier functions; raise ValueError naming n."""
    top = max_fourier_terms(L)
    if not 1 <= n <= top:
        raise ValueError(f"the number of real Fourier functions must be in 1..{top} on a grid of L = {L}, got {n}")
    return n


def fourier_index(n: int):
    """Frequency k and kind (0 = cos, incl. the constant; 1 = sin) of the first n dictionary functions: (n,) each."""
    idx = torch.arange(n)
    k = (idx + 1) // 2
    kind = torch.where(idx == 0, 0, 1 - idx % 2)
    return k, kind


def fourier_functions(k, kind, L: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Values cos 2πk s_i (kind 0) or sin 2πk s_i (kind 1) on the grid. k, kind: (K,). Returns (L, K)."""
    s = midpoints(L, dtype=dtype, device=device).unsqueeze(-1)
    k = torch.as_tensor(k, dtype=dtype, device=device).reshape(-1)
    kind = torch.as_tensor(kind, device=device).reshape(-1)
    phase = 2 * math.pi * s * k
    return torch.where(kind == 0, torch.cos(phase), torch.sin(phase))


def fourier_energies(x: torch.Tensor) -> torch.Tensor:
    """⟨x, f⟩² / ‖f‖² for every dictionary function f in dictionary order, batched. Returns (…, max_fourier_terms).

    With F_k = (1/L) Σ_i x_i e^{−2πik s_i} = e^{−iπk/L} · rfft(x)_k / L: ⟨x, cos⟩ = Re F_k, ⟨x, sin⟩ = −Im F_k.
    """
    L = x.shape[-1]
    M = (L - 1) // 2 + 1                                 # frequencies 0..M−1 are below Nyquist
    k = torch.arange(M, device=x.device, dtype=x.dtype)
    F = torch.fft.rfft(x, dim=-1)[..., :M] / L * torch.polar(torch.ones_like(k), -math.pi * k / L)
    cos_e, sin_e = 2 * F.real ** 2, 2 * F.imag ** 2
    pairs = torch.stack([cos_e[..., 1:], sin_e[..., 1:]], dim=-1).flatten(-2)
    return torch.cat([F.real[..., :1] ** 2, pairs], dim=-1)


def fourier_partial_l2_sq(x: torch.Tensor) -> torch.Tensor:
    """l2_sq of the Fourier partial sums with N = 0..max_fourier_terms real functions (entry N). (…, M + 1)."""
    e = fourier_energies(x)
    kept = torch.cat([torch.zeros_like(e[..., :1]), torch.cumsum(e, -1)], -1)
    return ((x ** 2).mean(-1, keepdim=True) - kept).clamp_min(0)


def fourier_best_l2_sq(x: torch.Tensor) -> torch.Tensor:
    """l2_sq of the best N-term Fourier approximations, N = 0..max_fourier_terms (entry N). (…, M + 1)."""
    e = torch.sort(fourier_energies(x), dim=-1, descending=True).values
    kept = torch.cat([torch.zeros_like(e[..., :1]), torch.cumsum(e, -1)], -1)
    return ((x ** 2).mean(-1, keepdim=True) - kept).clamp_min(0)


def fourier_best_terms(x: torch.Tensor, n: int) -> torch.Tensor:
    """Dictionary indices (…, n) of the n functions with the largest ⟨x, f⟩²/‖f‖² (ties: lower frequency first)."""
    check_fourier_terms(n, x.shape[-1])
    order = torch.sort(fourier_energies(x), dim=-1, descending=True, stable=True).indices
    return order[..., :n]
