"""The ideal dictionaries the SSM bases approximate: Haar (eqs. 10, 16-18; PyWavelets) and Fourier (eq. 27; FFT).

Their errors in a sweep come from the coefficients (both dictionaries are orthogonal on the grid), summed as tails
so that a signal's mean never cancels against its energy; in a fit, from the residual of the least squares on the
chosen functions.
"""
from __future__ import annotations

import torch

from .. import bases
from ..registry import FitParts, Strategy, register
from .shared import fourier_chosen, fourier_labels, fourier_theory, haar_chosen, haar_labels, haar_theory


def _fit_haar(strategy):
    def build(x, n, settings):
        j, k = haar_chosen(x, n, strategy)
        G = bases.haar_atoms(j, k, x.shape[-1], dtype=x.dtype, device=x.device)
        atoms = [{"j": a, "k": b} for a, b in zip(j.tolist(), k.tolist())]
        return FitParts(G, G, haar_labels(j, k), {"atoms": atoms})
    return build


def _fit_fourier(strategy):
    def build(x, n, settings):
        k, kind = fourier_chosen(x, n, strategy)
        G = bases.fourier_functions(k, kind, x.shape[-1], dtype=x.dtype, device=x.device)
        params = {"frequencies": k.tolist(), "kinds": ["cos" if t == 0 else "sin" for t in kind.tolist()]}
        return FitParts(G, G, fourier_labels(k, kind), params)
    return build


def _haar_linear_sweep(x, n_max, settings, params):
    """First-N Haar atoms, coarse to fine: the tail of the squared coefficients in dictionary order."""
    c2 = bases.haar_coefficients(x) ** 2
    tail = torch.cumsum(c2.flip(-1), -1).flip(-1)                      # tail[N] = Σ_{i ≥ N} c_i²
    return tail[:, 1:n_max + 1]


register(Strategy(
    "haar", "best", "the ideal best N-term Haar dictionary (largest |coefficients|, pywt)", "Haar, best N terms",
    fit=_fit_haar("best"), sweep=lambda x, n_max, s, p: bases.haar_best_l2_sq(x)[:, 1:n_max + 1],
    theory=haar_theory, max_n=lambda L: L, power_of_two=True, style=("o", "-"), panel=1, default_fit=True,
    reference=True))
register(Strategy(
    "haar", "linear", "the first N Haar atoms, coarse to fine (no rate is stated for it)", "Haar, first N atoms",
    fit=_fit_haar("linear"), sweep=_haar_linear_sweep, max_n=lambda L: L, power_of_two=True, style=("", "--"),
    panel=1))
register(Strategy(
    "fourier", "partial", "the ideal Fourier partial sum with N real functions (1, cos, sin, …)",
    "Fourier partial sum", fit=_fit_fourier("partial"),
    sweep=lambda x, n_max, s, p: bases.fourier_partial_l2_sq(x)[:, 1:n_max + 1],
    theory=fourier_theory, max_n=bases.max_fourier_terms, style=("", "--"), default_fit=True, reference=True))
register(Strategy(
    "fourier", "best", "the ideal best N-term Fourier dictionary", "Fourier, best N terms",
    fit=_fit_fourier("best"), sweep=lambda x, n_max, s, p: bases.fourier_best_l2_sq(x)[:, 1:n_max + 1],
    theory=fourier_theory, max_n=bases.max_fourier_terms, style=("", ":")))
