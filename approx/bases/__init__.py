"""Basis functions of Sec. 4.1: Mamba (Heaviside/Haar, eqs. 8, 18-22) and S4D (eq. 9) realised through the scan
engine, and the ideal Haar (PyWavelets) and Fourier (FFT) dictionaries they approximate.

Flat API; shapes are stated in each docstring. All builders are batched over leading axes where they say so.
Which of them a fit or a sweep uses, and how, is said once in :mod:`approx.registry` (entries in
:mod:`approx.families`).
"""
from .scan_form import scan_basis_values, scan_inner_products
from .mamba import (TIME_MODES, default_sharpness, heaviside_grid, heaviside_switch, mamba_basis, mamba_values,
                    resolve_sharpness, time_signal)
from .s4d import fourier_lambdas, s4d_basis, s4d_basis_complex, s4d_lin_lambdas, s4d_pairs
from .haar import (check_power_of_two, haar_atoms, haar_best_atoms, haar_best_l2_sq, haar_coefficients,
                   haar_heavisides, haar_index)
from .fourier import (check_fourier_terms, fourier_best_l2_sq, fourier_best_terms, fourier_energies,
                      fourier_functions, fourier_index, fourier_partial_l2_sq, max_fourier_terms)

__all__ = [
    "scan_basis_values", "scan_inner_products",
    "TIME_MODES", "default_sharpness", "heaviside_grid", "heaviside_switch", "mamba_basis", "mamba_values",
    "resolve_sharpness", "time_signal",
    "fourier_lambdas", "s4d_basis", "s4d_basis_complex", "s4d_lin_lambdas", "s4d_pairs",
    "check_power_of_two", "haar_atoms", "haar_best_atoms", "haar_best_l2_sq", "haar_coefficients",
    "haar_heavisides", "haar_index",
    "check_fourier_terms", "fourier_best_l2_sq", "fourier_best_terms", "fourier_energies", "fourier_functions",
    "fourier_index", "fourier_partial_l2_sq", "max_fourier_terms",
]
