"""What several families share: the rate laws of Cor. 1 and the choice of Haar atoms and Fourier functions."""
from __future__ import annotations

import torch

from .. import bases

HAAR_THEORY = ("l2_sq = O(2^(-N/m)), c <= m = {m}: best N-term Haar, one nonzero wavelet per scale and jump "
               "(eqs. 28-31); an upper bound on c")
FOURIER_THEORY = ("l2_sq = O(N^-1): Fourier coefficients of a jump decay as 1/n (eq. 27), so the tail sum of squares "
                  "after N terms is O(1/N) (Cor. 1); the plain l2 decays as N^-1/2")


def fourier_theory(m: int) -> dict:
    """Cor. 1 and eq. (27) for Fourier-type bases: l2_sq ~ N^-1 (fitted from N = 4)."""
    return {"law": "power", "value": -1.0, "bound": False, "n_lo": 4, "stride": 1, "statement": FOURIER_THEORY}


def haar_theory(m: int) -> dict:
    """Eqs. (28)-(31): best N-term Haar on m jumps decays at least as 2^(-N/m) (fitted from N = m + 2)."""
    return {"law": "exp", "value": float(m), "bound": True, "n_lo": m + 2, "stride": 1,
            "statement": HAAR_THEORY.format(m=m)}


def haar_labels(j, k) -> list:
    return ["φ" if a < 0 else f"ψ({a},{b})" for a, b in zip(j.tolist(), k.tolist())]


def fourier_labels(k, kind) -> list:
    """Names of real Fourier functions as the dictionary holds them (1, cos 2πks, sin 2πks)."""
    return ["1" if f == 0 else f"{'cos' if t == 0 else 'sin'} 2π·{f}s" for f, t in zip(k.tolist(), kind.tolist())]


def haar_chosen(x, n, strategy):
    """(j, k) of the n Haar atoms a strategy keeps: the largest |coefficients| (best) or the first n (linear)."""
    L = bases.check_power_of_two(x.shape[-1])
    j_all, k_all = bases.haar_index(L)
    idx = bases.haar_best_atoms(x, n) if strategy == "best" else torch.arange(n)
    return j_all[idx.cpu()], k_all[idx.cpu()]


def fourier_chosen(x, n, strategy):
    """(k, kind) of the n real Fourier functions a strategy keeps: the first n (partial) or the largest (best)."""
    L = x.shape[-1]
    bases.check_fourier_terms(n, L)
    k_all, kind_all = bases.fourier_index(bases.max_fourier_terms(L))
    idx = bases.fourier_best_terms(x, n) if strategy == "best" else torch.arange(n)
    return k_all[idx.cpu()], kind_all[idx.cpu()]
