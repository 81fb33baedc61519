"""The ideal Haar dictionary (eqs. 10, 16-18) on the grid, computed with PyWavelets.

Atoms, in the order of ``pywt.wavedec`` (coarse to fine): index 0 is the scaling function φ ≡ 1 on [0, 1],
index 2^j + k is ψ_{j,k}(s) = 2^{j/2} ψ(2^j s − k), j = 0..J−1, k = 0..2^j − 1 (ψ = +1 on [0, ½), −1 on [½, 1)).
On a grid of L = 2^J midpoints these L atoms are orthonormal in ⟨f, g⟩ = (1/L) Σ f g, and
⟨x, atom⟩ = (pywt coefficient)/√L for ``pywt.wavedec(x, "haar", mode="periodization", level=J)``.

The dyadic dictionary needs L to be a power of two: for any other L these functions raise a ValueError that names
L (resample the signal to a power of two).
"""
from __future__ import annotations

import math

import numpy as np
import pywt
import torch

from signals.grid import check_length, midpoints


def check_power_of_two(L: int) -> int:
    """The Haar dictionary's grid size; raise ValueError naming L unless it is a power of two (≥ 2)."""
    check_length(L)
    if L < 2 or L & (L - 1):
        raise ValueError(f"the Haar dictionary needs a power-of-two number of samples, got samples = {L} "
                         "(resample the signal to a power of two)")
    return L


def haar_index(L: int):
    """Scale and shift of every atom, in coefficient order: (j, k) integer tensors of shape (L,); j = −1 marks
    the scaling function (k = 0)."""
    J = int(math.log2(check_power_of_two(L)))
    j = torch.cat([torch.tensor([-1])] + [torch.full((2 ** jj,), jj) for jj in range(J)])
    k = torch.cat([torch.tensor([0])] + [torch.arange(2 ** jj) for jj in range(J)])
    return j, k


def haar_coefficients(x: torch.Tensor) -> torch.Tensor:
    """Grid coefficients ⟨x, atom_n⟩ of every Haar atom, batched over rows (pywt.wavedec, 'haar', 'periodization').

    x : (…, L) real, L a power of two. Returns (…, L) in the atom order of :func:`haar_index`.
    """
    x = torch.as_tensor(x)
    L = check_power_of_two(x.shape[-1])
    J = int(math.log2(L))
    coeffs = pywt.wavedec(x.detach().cpu().numpy(), "haar", mode="periodization", level=J, axis=-1)
    flat = np.concatenate(coeffs, axis=-1) / math.sqrt(L)
    return torch.as_tensor(flat, dtype=x.dtype, device=x.device)


def haar_atoms(j, k, L: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Ideal atom values on the grid: 1 for j = −1, ψ_{j,k}(s_i) of eq. (17) otherwise. j, k: (K,). Returns (L, K)."""
    check_length(L)
    j = torch.as_tensor(j, dtype=dtype, device=device).reshape(-1)
    k = torch.as_tensor(k, dtype=dtype, device=device).reshape(-1)
    s = midpoints(L, dtype=dtype, device=device).unsqueeze(-1)
    scale = torch.exp2(j.clamp_min(0))
    u = s * scale - k                                                    # 2^j s − k
    psi = torch.where((u >= 0) & (u < 0.5), 1.0, 0.0) - torch.where((u >= 0.5) & (u < 1), 1.0, 0.0)
    psi = psi.to(dtype) * scale.sqrt()
    return torch.where(j < 0, torch.ones_like(psi), psi)


def haar_heavisides(j, k):
    """The shifted Heavisides of eq. (18) that make each atom, batched: atom = Σ_slot weight · H(s − t̂).

    j, k : (…, A) atom scales and shifts (j = −1 for the scaling function, as :func:`haar_index` gives them).
    Returns t̂ (…, A, 3) and weights (…, A, 3): for ψ_{j,k}, t̂ = (2^{−j}k, 2^{−j}k + 2^{−(j+1)}, 2^{−j}(k+1)) and
    weights 2^{j/2}(1, −2, 1),
        ψ_{j,k} = 2^{j/2}[H(s − 2^{−j}k) − 2H(s − 2^{−j}k − 2^{−(j+1)}) + H(s − 2^{−j}(k+1))];
    a Heaviside at t̂ = 1 vanishes on [0, 1) and gets weight 0 (k = 2^j − 1); the scaling function is H(s − 0)
    alone (weights (1, 0, 0)). The paper's eq. (23) prints ψ − g¹ + g³ − 2g²; eq. (18) means g¹ − 2g² + g³.
    """
    j, k = torch.as_tensor(j), torch.as_tensor(k)
    jf, kf = j.to(torch.float64).clamp_min(0), k.to(torch.float64)
    a = kf * torch.exp2(-jf)
    h = torch.exp2(-(jf + 1))
    t_hat = torch.stack([a, a + h, a + 2 * h], -1)
    w = torch.exp2(jf / 2)[..., None] * torch.tensor([1.0, -2.0, 1.0], dtype=torch.float64)
    w = torch.where(t_hat >= 1.0, torch.zeros_like(w), w)
    phi = (j < 0)[..., None]
    t_hat = torch.where(phi, torch.zeros_like(t_hat), t_hat)
    w = torch.where(phi, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), w)
    return t_hat, w


def haar_best_atoms(x: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Indices (…, n_atoms) of the n_atoms largest |⟨x, atom⟩| (the best n-term Haar approximation; ties keep the
    coarser atom first)."""
    c = haar_coefficients(x)
    if not 1 <= n_atoms <= c.shape[-1]:
        raise ValueError(f"the number of Haar atoms must be in 1..{c.shape[-1]}, got {n_atoms}")
    order = torch.sort(c.abs(), dim=-1, descending=True, stable=True).indices
    return order[..., :n_atoms]


def haar_best_l2_sq(x: torch.Tensor) -> torch.Tensor:
    """l2_sq of the best K-term Haar approximation for K = 0..L (entry K), batched (eqs. 28-29).

    The dictionary is orthonormal and complete on the grid, so the error of the best K terms is the sum of the
    L − K smallest squared coefficients; it is summed from the smallest up (a tail sum), never as ‖x‖² minus the
    kept energy, which would cancel on a signal with a large mean. Returns (…, L + 1)."""
    c2 = torch.sort(haar_coefficients(x) ** 2, dim=-1).values             # ascending
    tail = torch.cumsum(c2, -1).flip(-1)                                    # tail[K] = Σ of the L − K smallest
    return torch.cat([tail, torch.zeros_like(tail[..., :1])], -1)
