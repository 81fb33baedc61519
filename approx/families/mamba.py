"""Mamba bases (eq. 8, the simplified S6 of Sec. 4.1 whose input dependence acts through Δ), realised through the
scan (:mod:`approx.bases.mamba`).

Strategies: ``haar`` (Thm. 1: the N // 3 largest Haar atoms of the signal, each realised by its three Heaviside
Mamba bases with the fixed weights of eq. 18), ``heaviside`` (H(s − 0) and Heavisides at the signal's largest
jumps; m + 1 of them represent m jumps, eqs. 20-22) and ``learned`` (N bases (t̂, |w|, λ) trained by Adam through
the scan, :mod:`approx.learned`; sweeps only).

A Heaviside basis at sharpness |w| is not exactly H(s − t̂): the error of the m + 1 Heavisides at the true jumps is
the floor a sweep's rate fit stops at (set by L and |w|, eq. 22).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import bases
from ..learned import breakpoint_report, train_mamba_bases
from ..lstsq import nested_l2_sq
from ..registry import FitParts, Strategy, register
from .shared import haar_labels

LEARNED_THRESHOLD = 1e-3


def signal_jumps(x: torch.Tensor, n_jumps: int, *, rtol: float = 1e-12):
    """The ``n_jumps`` largest jumps of a sampled signal, as cell edges t̂ = i/L between samples i and i + 1.

    A jump is a change |x_{i+1} − x_i| above ``rtol``·max|x|; the largest are kept (ties: the earlier first).
    Returns (edges, sizes): sorted edges (J,) and the signed jumps there, J ≤ n_jumps.
    """
    L = x.shape[-1]
    d = x[1:] - x[:-1]
    tol = rtol * float(x.abs().max().clamp_min(1e-300))
    order = torch.sort(d.abs(), descending=True, stable=True).indices
    keep = order[: max(n_jumps, 0)]
    keep = keep[d[keep].abs() > tol]
    keep = torch.sort(keep).values
    return (keep + 1).to(x.dtype) / L, d[keep]


def _build(t_hat, L, settings, x):
    return bases.mamba_basis(t_hat, L, sharpness=settings.sharpness, time=settings.time, backend=settings.backend,
                             dtype=x.dtype, device=x.device)


def _heaviside_fit(x, n, settings):
    L = x.shape[-1]
    edges, sizes = signal_jumps(x, n - 1)
    t_hat = torch.cat([edges.new_zeros(1), edges])
    G = _build(t_hat, L, settings, x)
    labels = ["H(s − 0)"] + [f"H(s − {t:.4f})" for t in edges.tolist()]
    params = {"jumps": edges.tolist(), "jump_sizes": sizes.tolist(),
              "switch_points": bases.heaviside_switch(t_hat, L).tolist()}
    return FitParts(G, G, labels, params, bases.heaviside_grid(t_hat, L, dtype=x.dtype, device=x.device))


def _haar_fit(x, n, settings):
    L = bases.check_power_of_two(x.shape[-1])
    if n < 3:
        raise ValueError(f"n = {n} is too small for mamba/haar: three Mamba bases realise one Haar wavelet "
                         "(Thm. 1), so n must be ≥ 3")
    idx = bases.haar_best_atoms(x, n // 3)
    j_all, k_all = bases.haar_index(L)
    j, k = j_all[idx.cpu()], k_all[idx.cpu()]
    slots, weights = bases.haar_heavisides(j, k)                            # (A, 3) each
    used = weights != 0
    t_hat, column = torch.unique(slots[used], sorted=True, return_inverse=True)
    W = torch.zeros(len(t_hat), len(j), dtype=x.dtype, device=x.device)
    atom = torch.arange(len(j))[:, None].expand_as(slots)[used]
    W[column.to(x.device), atom.to(x.device)] = weights[used].to(x.device, x.dtype)
    H = _build(t_hat, L, settings, x)
    coef = bases.haar_coefficients(x)
    params = {"atoms": [{"j": a, "k": b, "coefficient": float(coef[i])}
                        for a, b, i in zip(j.tolist(), k.tolist(), idx.tolist())],
              "heavisides": t_hat.tolist(), "switch_points": bases.heaviside_switch(t_hat, L).tolist()}
    ideal = bases.haar_atoms(j, k, L, dtype=x.dtype, device=x.device)
    return FitParts(H @ W, H, haar_labels(j, k), params, ideal)


def heaviside_order(breaks: np.ndarray, levels: np.ndarray) -> torch.Tensor:
    """t̂ = (0, jumps by decreasing |size|) per trial: (T, m + 1)."""
    sizes = np.abs(np.diff(levels, axis=-1))
    order = np.argsort(-sizes, axis=-1, kind="stable")
    jumps = np.take_along_axis(breaks, order, -1)
    return torch.as_tensor(np.concatenate([np.zeros((breaks.shape[0], 1)), jumps], -1))


def _heaviside_sweep(x, n_max, settings, params):
    """(T, n_max) l2_sq of the Heavisides at the true jumps; N > m + 1 adds nothing (the value at m + 1)."""
    T, L = x.shape
    G = _build(heaviside_order(*params)[:, :n_max], L, settings, x)
    err = nested_l2_sq(G, x)
    if err.shape[-1] < n_max:
        err = torch.cat([err, err[:, -1:].expand(T, n_max - err.shape[-1])], -1)
    return err


def _floor(x, settings, params):
    """The error of the m + 1 Heavisides at the true jumps at this sharpness: no Mamba basis set does better."""
    return _heaviside_sweep(x, params[0].shape[-1] + 1, settings, params)[:, -1]


def _haar_sweep(x, n_max, settings, params):
    """(T, n_max) l2_sq of Thm. 1's Mamba-Haar bases: N Mamba bases realise the N // 3 best atoms."""
    T, L = x.shape
    n_atoms = n_max // 3
    out = (x ** 2).mean(-1, keepdim=True).expand(T, n_max).clone()
    if n_atoms == 0:
        return out
    idx = bases.haar_best_atoms(x, n_atoms).cpu()                       # (T, A)
    j_all, k_all = bases.haar_index(L)
    t_hat, w = bases.haar_heavisides(j_all[idx], k_all[idx])           # (T, A, 3)
    H = _build(t_hat.reshape(T, -1), L, settings, x)                    # (T, L, 3A)
    atoms = (H.reshape(T, L, n_atoms, 3) * w.to(x.device, x.dtype)[:, None]).sum(-1)
    per_atom = nested_l2_sq(atoms, x)                                   # (T, A)
    n = torch.arange(1, n_max + 1, device=x.device)
    have = (n // 3) >= 1
    out[:, have] = per_atom[:, (n[have] // 3) - 1]
    return out


def _train(m, n_values, trials, settings, options):
    """Train N Mamba bases per trial at each N of ``n_values``, with how close they come to Thm. 1's Heavisides."""
    import signals
    samples, seed = options["samples"], options["seed"]
    x = signals.piecewise(m, samples, seed, batch=trials, device=options["device"])
    breaks = torch.as_tensor(signals.piecewise_params(m, seed, trials)[0], device=options["device"])
    out, info = {}, []
    for n in n_values:
        r = train_mamba_bases(x, n, steps=options["steps"], seed=seed + n, restarts=options["restarts"],
                              backend=settings.backend)
        rep = breakpoint_report(r["t_hat"], r["w"], r["lam"], breaks, samples)
        good = r["l2_sq"] < LEARNED_THRESHOLD
        near = rep["jump_dist"] <= 2.0 / samples
        sharp = rep["sharp"]
        out[n] = r["l2_sq"]
        info.append({"n": n, "below_threshold": int(good.sum()), "trials": trials, "threshold": LEARNED_THRESHOLD,
                     "median_l2_sq": float(r["l2_sq"].median()), "train_s": round(r["wall_s"], 3),
                     "final_loss": r["loss"][-1] if r["loss"] else None,
                     "jumps_within_2_cells": int(near.sum()),
                     "sharp_per_trial_median": float(rep["n_sharp"].double().median()),
                     "good_with_m_sharp_at_jumps": int((good & near).sum()),
                     "abs_w_median_sharp": float(r["w"].abs()[sharp].median()) if sharp.any() else None,
                     "lam_median_sharp": float(r["lam"][sharp].median()) if sharp.any() else None,
                     "edge_width_median_sharp": float(rep["edge_width"][sharp].median()) if sharp.any() else None})
    return x, out, info


def _haar_theory(m: int, learned: bool = False) -> dict:
    """Thm. 1 + Cor. 1: 3 Mamba bases per Haar wavelet, so c ≤ 3m (fitted on every third N from 3(m + 2))."""
    return {"law": "exp", "value": 3.0 * m, "bound": True, "n_lo": m + 2 if learned else 3 * (m + 2),
            "stride": 1 if learned else 3,
            "statement": f"l2_sq = O(2^(-N/3m)), c <= 3m = {3 * m}: 3 Mamba bases per Haar wavelet "
                         f"(eq. 18, Thm. 1) on top of the Haar rate (Cor. 1); an upper bound on c",
            **({"caveat": "trained by gradient descent, which the bound does not cover"} if learned else {})}


def _heaviside_theory(m: int) -> dict:
    return {"law": "floor", "value": float(m + 1), "bound": False, "n_lo": 1, "stride": 1,
            "statement": f"exact at N = m + 1 = {m + 1} Heavisides at the jumps (eqs. 20-22), up to the floor set "
                         f"by L and |w|"}


register(Strategy(
    "mamba", "haar", "Thm. 1: the N // 3 largest Haar atoms (pywt), each realised by its 3 Heaviside Mamba bases "
    "(eq. 18)", "Mamba, Haar of Thm. 1", fit=_haar_fit, sweep=_haar_sweep, floor=_floor, theory=_haar_theory,
    ideal=("haar", "best"), max_n=lambda L: 3 * L, power_of_two=True, style=("s", "-"), panel=2, default_fit=True,
    default_rates=True))
register(Strategy(
    "mamba", "heaviside", "H(s − 0) and Heavisides at the signal's N − 1 largest jumps (m + 1 represent m jumps)",
    "Mamba, Heavisides at the jumps", fit=_heaviside_fit, sweep=_heaviside_sweep, floor=_floor,
    theory=_heaviside_theory, max_n=lambda L: L, style=("D", "--"), panel=2, default_rates=True))
register(Strategy(
    "mamba", "learned", "N Mamba bases (t̂, |w|, λ) trained by Adam through the scan (sweeps only)",
    "Mamba, learned", train=_train, floor=None, theory=lambda m: _haar_theory(m, learned=True),
    style=("*", ""), panel=2))
