"""Basis functions of Sec. 4.1: Mamba (Heaviside/Haar, eqs. 8, 18-22) and S4D (eq. 9) realised through the scan
engine, and the ideal Haar (PyWavelets) and Fourier (FFT) dictionaries they approximate.

Flat API; shapes are stated in each docstring. All builders are batched over leading axes where they say so.
"""
from .scan_form import scan_basis_values, scan_inner_products
from .mamba import (TIME_MODES, check_sharpness, default_sharpness, heaviside_delta, heaviside_grid,
                    heaviside_switch, mamba_basis, time_recovery, time_signal)
from .s4d import fourier_lambdas, s4d_basis, s4d_basis_complex, s4d_lin_lambdas
from .haar import (check_power_of_two, haar_atoms, haar_best_atoms, haar_best_l2_sq, haar_coefficients,
                   haar_heavisides, haar_index)
from .fourier import (check_fourier_terms, fourier_best_l2_sq, fourier_best_terms, fourier_energies,
                      fourier_functions, fourier_index, fourier_partial_l2_sq, max_fourier_terms)

__all__ = [
    "scan_basis_values", "scan_inner_products",
    "TIME_MODES", "check_sharpness", "default_sharpness", "heaviside_delta", "heaviside_grid", "heaviside_switch",
    "mamba_basis", "time_recovery", "time_signal",
    "fourier_lambdas", "s4d_basis", "s4d_basis_complex", "s4d_lin_lambdas",
    "check_power_of_two", "haar_atoms", "haar_best_atoms", "haar_best_l2_sq", "haar_coefficients",
    "haar_heavisides", "haar_index",
    "check_fourier_terms", "fourier_best_l2_sq", "fourier_best_terms", "fourier_energies", "fourier_functions",
    "fourier_index", "fourier_partial_l2_sq", "max_fourier_terms",
]
