"""Learned bases: the parameters of N Mamba (or S4D) basis functions trained by gradient descent through the scan.

Does training find the Heaviside/Haar constructions of Thm. 1? Each trial (a signal x of shape (L,)) gets its own N
bases, and all trials train at once in the scan's batch dimension.

Mamba (eq. 8 with Δ reading time, eqs. 20-22): basis n has Δ_n(τ) = softplus(w_n (τ − t̂_n)) with w_n < 0 and decay
λ_n > 0, and on the grid

    g_n(s_i) = exp(−(λ_n / L) Σ_{r > i} Δ_n(τ_r)),   τ_r = r / L.

The trained parameters are the breakpoint t̂_n, log|w_n| and log λ_n (``B_n`` is a scale, absorbed by the
coefficients). S4D (eq. 9): g_n(s_i) = exp(−λ_n (1 − τ_i)) with complex λ_n, Re λ_n = exp(ρ_n) > 0 trained through
ρ_n and Im λ_n directly; a complex λ gives two real functions (Re and Im), so N real functions take ⌈N/2⌉ λ's.

The coefficients are not free parameters: the loss is the error of the least-squares fit on the current bases
(variable projection), ``l2_sq = ‖x − G c*(G)‖²`` with ``c*`` from a slightly ridged normal equation so that
nearly equal columns do not blow up the gradient. Adam, seeded random start, a fixed step budget.

The basis values come from the builders every Mamba and S4D basis of the lab uses (:func:`approx.bases.mamba_values`,
:func:`approx.bases.s4d_pairs`: one :func:`kernels.selective_scan` of the time-reversed sequence driven by an
impulse, one channel per (trial, basis)) — and gradients flow back through the
scan (the reference loop on CPU, the Triton kernels' backward on CUDA). The reference scan is a Python loop over
L, so training on CPU uses a small grid (the sweep's default ``learned_samples`` = 128; see docs/rates.md).
"""
from __future__ import annotations

import math
import time

import torch

from signals.checks import check_int

from .bases import mamba_values, s4d_pairs
from .lstsq import errors, least_squares


def mamba_columns(t_hat: torch.Tensor, log_w: torch.Tensor, log_lam: torch.Tensor, L: int, *,
                  backend: str = "auto") -> torch.Tensor:
    """Trained Mamba basis values: :func:`approx.bases.mamba_values` with switch t̂_n, w_n = −exp(log_w_n) and
    λ_n = exp(log_lam_n), eq. (8) with the Δ of eqs. (20)-(22). t_hat, log_w, log_lam : (batch, K).

    Returns (batch, L, K). As |w| grows, g_n → H(s − (t̂_n − 1.5/L)) on the grid (the sum runs over r > i, and
    τ_r = r/L sits half a cell after s_r: see :mod:`approx.bases.mamba`)."""
    return mamba_values(t_hat, -log_w.exp(), log_lam.exp(), L, backend=backend, dtype=t_hat.dtype,
                        device=t_hat.device)


def s4d_columns(log_re: torch.Tensor, im: torch.Tensor, L: int, n_real: int, *,
                backend: str = "auto") -> torch.Tensor:
    """Trained S4D basis values: Re/Im exp(−λ_k (1 − s_i)), λ_k = exp(log_re_k) + i·im_k, eq. (9), the first
    ``n_real`` columns (:func:`approx.bases.s4d_pairs`). log_re, im : (batch, K). Returns (batch, L, n_real)."""
    return s4d_pairs(torch.complex(log_re.exp(), im), L, n_real, backend=backend, dtype=log_re.dtype,
                     device=log_re.device)


def projection_l2_sq(G: torch.Tensor, x: torch.Tensor, ridge: float = 1e-10) -> torch.Tensor:
    """Differentiable ``l2_sq`` of the (slightly ridged) least-squares fit of x (batch, L) on G (batch, L, K)."""
    L = x.shape[-1]
    gram = G.transpose(-1, -2) @ G / L
    eye = torch.eye(G.shape[-1], dtype=G.dtype, device=G.device)
    scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)[..., None, None]
    rhs = (G.transpose(-1, -2) @ x.unsqueeze(-1)) / L
    coef = torch.linalg.solve(gram + ridge * scale * eye, rhs)
    return ((x - (G @ coef).squeeze(-1)) ** 2).mean(-1)


def _adam(groups, loss_fn, steps: int):
    """Adam on ``groups`` for ``steps`` steps; returns the loss per step. Subnormal floats (from exp of large
    negative exponents in sharp bases) are flushed to zero meanwhile: on CPU they slow every op many times over."""
    opt = torch.optim.Adam(groups)
    history = []
    torch.set_flush_denormal(True)
    try:
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
            history.append(loss.item())
    finally:
        torch.set_flush_denormal(False)
    return history


def _check(x, n, steps, lr, restarts):
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a (trials, L) tensor, got {getattr(x, 'shape', type(x))}")
    for name, value, low in (("the number of bases", n, 1), ("steps", steps, 0), ("restarts", restarts, 1)):
        check_int(name, value, low)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")


def _best_of(restarts: int, T: int, l2_sq: torch.Tensor, *params):
    """Per trial, the restart with the smallest error: rows are ordered restart-major (row = r·T + t)."""
    best = l2_sq.reshape(restarts, T).argmin(0)
    rows = best * T + torch.arange(T, device=l2_sq.device)
    return [l2_sq[rows]] + [p[rows] for p in params]


def train_mamba_bases(x: torch.Tensor, n: int, *, steps: int = 600, seed: int = 0, restarts: int = 1,
                      lr: float = 0.01, lr_log: float = 0.1, w0: float | None = None, lam0: float | None = None,
                      backend: str = "auto") -> dict:
    """Train N Mamba bases per trial by Adam through the scan, with the coefficients by least squares.

    Parameters
    ----------
    x : (T, L) signals, one per trial (float64 recommended).
    n : number of bases N per trial.
    steps : Adam step budget; ``lr`` for t̂, ``lr_log`` for log|w| and log λ.
    seed : the random start — t̂ ~ U(0, 1) per basis.
    restarts : random starts per trial, trained together in the batch; the best per trial is kept.
    w0, lam0 : starting |w| and λ (default L/8 each: an edge about 8/L wide, 1/sqrt(λ|w|)).

    Returns
    -------
    dict with ``l2_sq`` (T,) of the exact least-squares fit at the trained parameters, ``t_hat``, ``w`` (< 0),
    ``lam`` (T, N) of the best start, ``loss`` (the mean ridged loss per step over all starts), ``steps``,
    ``restarts`` and ``wall_s``.
    """
    _check(x, n, steps, lr, restarts)
    T, L = x.shape
    xr = x.repeat(restarts, 1)
    gen = torch.Generator().manual_seed(seed)
    t_hat = torch.rand(restarts * T, n, generator=gen, dtype=x.dtype).to(x.device).requires_grad_()
    log_w = torch.full_like(t_hat, math.log(w0 if w0 is not None else L / 8)).requires_grad_()
    log_lam = torch.full_like(t_hat, math.log(lam0 if lam0 is not None else L / 8)).requires_grad_()
    start = time.perf_counter()

    def loss_fn():
        return projection_l2_sq(mamba_columns(t_hat, log_w, log_lam, L, backend=backend), xr).mean()

    history = _adam([{"params": [t_hat], "lr": lr}, {"params": [log_w, log_lam], "lr": lr_log}], loss_fn, steps)
    with torch.no_grad():
        G = mamba_columns(t_hat, log_w, log_lam, L, backend=backend)
        l2_sq = errors(xr, least_squares(G, xr)[1])["l2_sq"]
        l2_sq, th, lw, ll = _best_of(restarts, T, l2_sq, t_hat, log_w, log_lam)
    return {"l2_sq": l2_sq, "t_hat": th, "w": -lw.exp(), "lam": ll.exp(), "loss": history, "steps": steps,
            "restarts": restarts, "wall_s": time.perf_counter() - start}


def train_s4d_bases(x: torch.Tensor, n: int, *, steps: int = 600, seed: int = 0, restarts: int = 1,
                    lr: float = 0.03, backend: str = "auto") -> dict:
    """Train N real S4D basis functions per trial (⌈N/2⌉ complex λ) by Adam through the scan, coefficients by
    least squares.

    Random start: Re λ ~ U(0.1, 1), Im λ ~ U(0, 2π⌈N/2⌉) (frequencies up to those the Fourier basis of the same
    size would use); ``restarts`` starts per trial, the best kept. Returns ``l2_sq`` (T,), ``lam`` (T, ⌈N/2⌉)
    complex, ``loss``, ``steps``, ``restarts``, ``wall_s``.
    """
    _check(x, n, steps, lr, restarts)
    T, L = x.shape
    K = (n + 1) // 2
    xr = x.repeat(restarts, 1)
    gen = torch.Generator().manual_seed(seed)
    re0 = 0.1 + 0.9 * torch.rand(restarts * T, K, generator=gen, dtype=x.dtype)
    im0 = 2 * math.pi * K * torch.rand(restarts * T, K, generator=gen, dtype=x.dtype)
    log_re = re0.log().to(x.device).requires_grad_()
    im = im0.to(x.device).requires_grad_()
    start = time.perf_counter()

    def loss_fn():
        return projection_l2_sq(s4d_columns(log_re, im, L, n, backend=backend), xr).mean()

    history = _adam([{"params": [log_re, im], "lr": lr}], loss_fn, steps)
    with torch.no_grad():
        G = s4d_columns(log_re, im, L, n, backend=backend)
        l2_sq = errors(xr, least_squares(G, xr)[1])["l2_sq"]
        l2_sq, lre, lim = _best_of(restarts, T, l2_sq, log_re, im)
    return {"l2_sq": l2_sq, "lam": torch.complex(lre.exp(), lim), "loss": history, "steps": steps,
            "restarts": restarts, "wall_s": time.perf_counter() - start}


def breakpoint_report(t_hat: torch.Tensor, w: torch.Tensor, lam: torch.Tensor, breaks: torch.Tensor, L: int, *,
                      sharp_cells: float = 4.0) -> dict:
    """How close learned Mamba bases are to the Heaviside construction (eqs. 20-22).

    t_hat, w, lam : (T, N) learned parameters; breaks : (T, m) true jump positions; L : the grid they trained on.
    A basis is *sharp* when its edge width 1/sqrt(λ|w|) is at most ``sharp_cells`` grid cells (before t̂,
    g ≈ exp(−λ|w| d²/2), so g → H as λ|w| → ∞), and its edge on the grid sits at e_n = t̂_n − 1.5/L
    (:func:`mamba_columns`); a *blunt* basis is a smooth, slowly varying function (training uses one as the
    constant rather than moving an edge to 0).

    Returns ``edges`` (T, N), ``edge_width`` (T, N), ``sharp`` (T, N) bool, ``n_sharp`` (T,), and ``jump_dist``
    (T,): the largest distance from a true jump to the nearest sharp edge (inf when there is none).
    """
    edges = t_hat - 1.5 / L
    width = (lam * w.abs()).rsqrt()
    sharp = width <= sharp_cells / L
    if breaks.shape[-1]:
        gap = (breaks[..., :, None] - edges[..., None, :]).abs()
        gap = torch.where(sharp[..., None, :], gap, torch.full_like(gap, float("inf")))
        dist = gap.min(-1).values.max(-1).values
    else:
        dist = torch.zeros(t_hat.shape[0], dtype=t_hat.dtype, device=t_hat.device)
    return {"edges": edges, "edge_width": width, "sharp": sharp, "n_sharp": sharp.sum(-1), "jump_dist": dist}
