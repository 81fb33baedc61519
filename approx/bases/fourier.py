"""The ideal (real) Fourier dictionary on the grid, computed with the FFT.

Real functions in dictionary order: 1, cos 2πs, sin 2πs, cos 4πs, sin 4πs, …, i.e. index 0 is k = 0 and index
2k − 1, 2k are cos 2πks, sin 2πks. Only frequencies below Nyquist (k < L/2) are used, where the functions are
orthogonal on the midpoint grid with ‖1‖² = 1 and ‖cos‖² = ‖sin‖² = ½: at most :func:`max_fourier_terms` (L − 1
for even L, L for odd L) real functions. N counts real functions (docs/design.md §3). The partial sum with N functions is
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


def _outside_energy(x: torch.Tensor) -> torch.Tensor:
    """The part of ‖x‖² that no function below Nyquist carries: the Nyquist term of an even L (0 for odd L).

    On the midpoints the Nyquist function is sin(πL s_i) = ±1 (norm 1), so its energy is ⟨x, f⟩² with
    ⟨x, f⟩ = (1/L) Σ_i (−1)^{i−1} x_i (i = 1..L). Computed directly, not as ‖x‖² minus the rest."""
    L = x.shape[-1]
    if L % 2:
        return x.new_zeros(x.shape[:-1])
    sign = 1.0 - 2.0 * (torch.arange(L, device=x.device) % 2).to(x.dtype)
    return ((x * sign).mean(-1)) ** 2


def _tail_l2_sq(e: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """l2_sq after keeping the first N of the energies ``e`` (…, M), N = 0..M: the sum of the energies left out
    plus the Nyquist energy, summed from the end (no cancellation against the signal's mean). (…, M + 1)."""
    tail = torch.cumsum(e.flip(-1), -1).flip(-1)
    tail = torch.cat([tail, torch.zeros_like(tail[..., :1])], -1)
    return tail + _outside_energy(x)[..., None]


def fourier_partial_l2_sq(x: torch.Tensor) -> torch.Tensor:
    """l2_sq of the Fourier partial sums with N = 0..max_fourier_terms real functions (entry N). (…, M + 1)."""
    return _tail_l2_sq(fourier_energies(x), x)


def fourier_best_l2_sq(x: torch.Tensor) -> torch.Tensor:
    """l2_sq of the best N-term Fourier approximations, N = 0..max_fourier_terms (entry N). (…, M + 1)."""
    return _tail_l2_sq(torch.sort(fourier_energies(x), dim=-1, descending=True).values, x)


def fourier_best_terms(x: torch.Tensor, n: int) -> torch.Tensor:
    """Dictionary indices (…, n) of the n functions with the largest ⟨x, f⟩²/‖f‖² (ties: lower frequency first)."""
    check_fourier_terms(n, x.shape[-1])
    order = torch.sort(fourier_energies(x), dim=-1, descending=True, stable=True).indices
    return order[..., :n]
