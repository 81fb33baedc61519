"""The ideal Haar dictionary (eqs. 10, 16-18) on the grid, computed with PyWavelets.

Atoms, in the order of ``pywt.wavedec`` (coarse to fine): index 0 is the scaling function φ ≡ 1 on [0, 1],
index 2^j + k is ψ_{j,k}(s) = 2^{j/2} ψ(2^j s − k), j = 0..J−1, k = 0..2^j − 1 (ψ = +1 on [0, ½), −1 on [½, 1)).
On a grid of L = 2^J midpoints these L atoms are orthonormal in ⟨f, g⟩ = (1/L) Σ f g, and
⟨x, atom⟩ = (pywt coefficient)/√L for ``pywt.wavedec(x, "haar", mode="periodization", level=J)``.

The dyadic dictionary needs L to be a power of two: for any other L these functions raise a ValueError that names
L (resample the signal to a power of two, e.g. ``approx fit --signal file --resample --samples 4096``).
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
        raise ValueError(f"the Haar dictionary needs a power-of-two number of samples, got L = {L} "
                         "(resample the signal, e.g. --resample --samples 4096)")
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


def haar_heavisides(j: int, k: int):
    """The shifted Heavisides of eq. (18) that make one atom: a list of (t̂, weight) with atom = Σ weight·H(s − t̂).

    ψ_{j,k} = 2^{j/2}[H(s − 2^{−j}k) − 2H(s − 2^{−j}k − 2^{−(j+1)}) + H(s − 2^{−j}(k+1))]; the scaling function is
    H(s − 0). A Heaviside at t̂ = 1 vanishes on [0, 1) and is left out (k = 2^j − 1).
    """
    if j < 0:
        return [(0.0, 1.0)]
    a, h = k / 2 ** j, 2.0 ** (-(j + 1))
    w = 2.0 ** (j / 2)
    terms = [(a, w), (a + h, -2 * w), (a + 2 * h, w)]
    return [(t, c) for t, c in terms if t < 1.0]


def haar_best_atoms(x: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Indices (…, n_atoms) of the n_atoms largest |⟨x, atom⟩| (the best n-term Haar approximation; ties keep the
    coarser atom first)."""
    c = haar_coefficients(x)
    if not 1 <= n_atoms <= c.shape[-1]:
        raise ValueError(f"the number of Haar atoms must be in 1..{c.shape[-1]}, got {n_atoms}")
    order = torch.sort(c.abs(), dim=-1, descending=True, stable=True).indices
    return order[..., :n_atoms]


def haar_best_l2_sq(x: torch.Tensor) -> torch.Tensor:
    """l2_sq of the best K-term Haar approximation for K = 0..L (entry K), batched: ‖x‖² − Σ of the K largest
    squared coefficients (the dictionary is orthonormal on the grid; eqs. 28-29). Returns (…, L + 1)."""
    c2 = haar_coefficients(x) ** 2
    top = torch.sort(c2, dim=-1, descending=True).values
    kept = torch.cat([torch.zeros_like(top[..., :1]), torch.cumsum(top, -1)], -1)
    return ((x ** 2).mean(-1, keepdim=True) - kept).clamp_min(0)
