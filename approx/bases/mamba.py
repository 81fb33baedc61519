"""Mamba basis functions (eq. 8) with the Heaviside construction of Thm. 1 (eqs. 19-22) and Prop. 1's time.

On the grid (docs/design.md §3) a Mamba basis with B_n = 1 is g_n(s_i) = exp(−(λ_n/L) Σ_{r>i} Δ_n(x̃_r)). The input
x̃_r = [x_r; τ_r] carries the time channel τ_r = r/L, and Δ_n reads only that channel (weight 0 on x):

    Δ_n(τ) = softplus(w_n (τ − c_n)),   w_n = −|w|  (b_Δ = −w_n c_n in eq. (22)'s notation).

As |w| → ∞, Δ_n → ∞ before the switch point c_n and → 0 after it, so g_n → H(s − t̂_n) (eq. 22).

Half-cell bookkeeping. Because the sum runs over r > i, g(s_i) ≈ 1 iff Δ(τ_r) ≈ 0 for every r ≥ i + 1. For
g(s_i) = H(s_i − t̂) with i* = #{i : s_i ≤ t̂} (= ⌊L t̂ + ½⌋ up to rounding; so s_{i*} ≤ t̂ < s_{i*+1}), step i* + 1 must still be
"off" (Δ huge, so g(s_{i*}) ≈ 0) and steps from i* + 2 on must be "on" (Δ ≈ 0, so g(s_{i*+1}) = 1). The switch
must therefore lie strictly between τ_{i*+1} and τ_{i*+2}; we put it half-way, c = (i* + 1.5)/L, which is
t̂ + 1.5/L when t̂ = i*/L is a cell edge (every dyadic t̂ is one when L = 2^J).

Sharpness. With λ = 1 the last "off" step has Δ ≈ |w|/(2L) and a = exp(−Δ/L) ≈ exp(−|w|/(2L²)); the first "on"
step has Δ ≈ exp(−|w|/(2L)). The default |w| = 64 L² (:func:`default_sharpness`) gives a ≈ e^{−32} ≈ 1.3e-14.

Edge. A Mamba basis always has g(s_L) = B (the sum over r > L is empty), so H(s − t̂) with t̂ ≥ s_L — zero on the
grid — cannot be realised: the builder returns the indicator of the last cell there; callers drop such t̂.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels import recover_time
from signals.grid import check_length, midpoints, time_channel
from .scan_form import scan_basis_values

TIME_MODES = ("pe", "recover")


def default_sharpness(L: int, lam: float = 1.0) -> float:
    """|w| = 64 L² / λ: the last "off" step of a Heaviside basis has a ≈ e^{−32} (see the module docstring)."""
    check_length(L)
    return 64.0 * L * L / lam


def resolve_sharpness(sharpness, L: int, lam: float = 1.0) -> float:
    """|w| of the Heavisides: ``None`` → :func:`default_sharpness`, otherwise a positive finite number.

    The one place the lab validates and defaults the sharpness; raise ValueError naming ``sharpness``."""
    if sharpness is None:
        return default_sharpness(L, lam)
    try:
        value = float(sharpness)
    except (TypeError, ValueError):
        raise ValueError(f"sharpness must be a positive number, got {sharpness!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"sharpness must be a positive finite number, got {sharpness!r}")
    return value


def time_signal(L: int, time: str = "pe", *, dtype=torch.float64, device=None, backend: str = "auto"):
    """The time channel Δ reads, τ_i = i/L, shape (L,): ``"pe"`` the positional encoding appended to the input,
    ``"recover"`` the same τ computed by the Prop. 1 scan (:func:`kernels.recover_time`, eq. 24)."""
    if time not in TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(TIME_MODES)}, got {time!r}")
    if time == "pe":
        return time_channel(L, dtype=dtype, device=device)
    check_length(L)
    return recover_time(1, L, normalize=True, dtype=dtype, device=device, backend=backend)[0]


def heaviside_switch(t_hat: torch.Tensor, L: int) -> torch.Tensor:
    """Switch points c = (i* + 1.5)/L, i* = #{i : s_i ≤ t̂}, that make the discrete basis equal H(s_i − t̂)
    (module docstring). i* is counted against the grid itself, so t̂ on a midpoint is handled exactly. (…,) → (…,)."""
    t_hat = torch.as_tensor(t_hat)
    s = midpoints(L, dtype=t_hat.dtype, device=t_hat.device)
    i_star = torch.searchsorted(s, t_hat.contiguous(), right=True)
    return (i_star.to(t_hat.dtype) + 1.5) / L


def mamba_values(switch, w, lam, L: int, *, time: str = "pe", backend: str = "auto", dtype=torch.float64,
                 device=None) -> torch.Tensor:
    """Mamba basis values g_n(s_i) = exp(−(λ_n/L) Σ_{r>i} softplus(w_n (τ_r − c_n))) of eq. (8) (B_n = 1) with
    Δ reading the time channel τ (eqs. 20-22), through the scan (:func:`approx.bases.scan_basis_values`).

    switch, w, lam : broadcastable (…, K) switch points c_n, slopes w_n (< 0 for a Heaviside) and decay rates
    λ_n > 0. Returns (…, L, K). Every Mamba basis of the lab — the fixed Heavisides of :func:`mamba_basis` and the
    trained bases of :mod:`approx.learned` — is built here.
    """
    switch, w, lam = (torch.as_tensor(v, dtype=dtype, device=device) for v in (switch, w, lam))
    switch, w, lam = torch.broadcast_tensors(switch, w, lam)
    tau = time_signal(L, time, dtype=dtype, device=device, backend=backend)
    delta = F.softplus(w[..., None] * (tau - switch[..., None]))              # (…, K, L)
    return scan_basis_values(delta, lam, backend=backend)


def mamba_basis(t_hat, L: int, *, sharpness=None, lam: float = 1.0, time: str = "pe",
                backend: str = "auto", dtype=torch.float64, device=None) -> torch.Tensor:
    """Heaviside-like Mamba bases g_n(s_i) ≈ H(s_i − t̂_n) (eq. 22, B_n = 1), realised through the scan.

    Parameters
    ----------
    t_hat : (…, K) jump locations in [0, 1] (tensor or sequence).
    L : number of grid points.
    sharpness : |w| of Δ = softplus(w(τ − c)); ``None`` → :func:`default_sharpness` (64 L² / λ).
    lam : the decay rate λ > 0 shared by the bases (1 in the proof of Thm. 1).
    time : ``"pe"`` (τ appended to the input) or ``"recover"`` (τ from the Prop. 1 scan); same bases.
    backend : scan backend.

    Returns
    -------
    (…, L, K) basis values.
    """
    check_length(L)
    if not float(lam) > 0:
        raise ValueError(f"lam must be positive for a Heaviside basis, got {lam!r}")
    sharpness = resolve_sharpness(sharpness, L, lam)
    t_hat = torch.as_tensor(t_hat, dtype=dtype, device=device)
    return mamba_values(heaviside_switch(t_hat, L), -sharpness, float(lam), L, time=time, backend=backend,
                        dtype=dtype, device=device)


def heaviside_grid(t_hat, L: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """The ideal H(s_i − t̂_n) = 1[s_i > t̂_n] on the grid (what :func:`mamba_basis` tends to). (…, L, K)."""
    t_hat = torch.as_tensor(t_hat, dtype=dtype, device=device)
    s = midpoints(L, dtype=dtype, device=device)
    return (s.unsqueeze(-1) > t_hat.unsqueeze(-2)).to(dtype)
