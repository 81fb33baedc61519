"""Lemma 1: the sensitivity of h_t to x_j decays as exp(−λ Σ_{r=j+1}^t Δ_r) (eq. 37), fitted state by state.

The rate per step is λ = −Re A for S4D (Δ ≡ 1) and λ·mean(Δ) for S6 / Mamba-2 / Mamba-Δ⊤; fitted against the
Δ-time instead of t − j it is λ itself. :func:`fit_log_linear` is the one log-linear fit of the package.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from signals.checks import check_int

from ..layers.token import token_ssm
from .jacobians import closed_form_factors, jacobian_autograd, jacobian_closed_form, max_relative_error

_TINY = 1e-280          # sensitivities below this are underflow and left out of rate fits


def fit_log_linear(values, steps) -> tuple[float, float, int]:
    """Least-squares fit log v = a − r·s (numpy.polyfit) over the entries with v > 1e-280 (no underflow).

    Returns (r, a, number of points used); r and a are NaN with fewer than two points.
    """
    v, s = np.asarray(values, dtype=float), np.asarray(steps, dtype=float)
    keep = np.isfinite(v) & (v > _TINY)
    if keep.sum() < 2 or np.ptp(s[keep]) == 0:
        return math.nan, math.nan, int(keep.sum())
    slope, intercept = np.polyfit(s[keep], np.log(v[keep]), 1)
    return float(-slope), float(intercept), int(keep.sum())


def decay_experiment(layer, x: torch.Tensor, *, j: int = 1, backend: str = "auto", curves: int = 4,
                     progress: bool = False) -> dict:
    """Lemma 1 on one layer and one input: autograd vs closed form, and decay rates fitted against t − j.

    Parameters
    ----------
    layer : a mixer of :mod:`ssm.layers` or a :class:`ssm.layers.TokenSSM`; x : (L, d_in); j : the input position
    (1-based); curves : how many states' curves the plot data keep (spread over the theory rates).

    For every state (d, n) the sensitivity s_t = ‖∂h_t[d, n]/∂x_j‖ (norm over the input's coordinates) is fitted
    as log s_t = a − r (t − j) for t > j; Lemma 1 (eq. 37) predicts r = λ·mean_{r>j} Δ_r (λ = −Re A; Δ ≡ 1 for
    S4D, so r = λ). Fitting log s_t against the Δ-time Σ_{r=j+1}^t Δ_r instead recovers λ itself.

    Returns ``{"metrics", "components", "series"}``: metrics hold the maximal relative errors of autograd vs
    closed form for the state and the output (:func:`max_relative_error`) and the largest relative deviations of
    the fitted rates from theory; components list every state's λ, mean Δ, theory and fitted rates; series holds
    the arrays behind the plot: ``heat`` (L, L) = ‖∂h_t/∂x_j‖ over the states, ``steps`` = t − j, ``states`` (one
    ``{"d", "n", "sensitivity", "lemma1"}`` per kept state: measured and G_j·e^{−rate·(t−j)}), ``multipliers``
    = every e^{−λΔ_t}.
    """
    L = x.shape[0]
    check_int("j", j, 1, L)
    ssm = token_ssm(layer)
    x = x.to(torch.float64)
    J = jacobian_autograd(layer, x, target="state", backend=backend, progress=progress)
    Jc = jacobian_closed_form(ssm, x, target="state")
    Jy = jacobian_autograd(layer, x, target="output", backend=backend, progress=progress)
    Jyc = jacobian_closed_form(ssm, x, target="output")
    j0 = j - 1
    s = torch.linalg.vector_norm(J[:, j0], dim=-1).cpu().numpy()                  # (L, D, N)
    dl = ssm.to(x.device).delta_grid(x).cpu().numpy()
    dtime = np.cumsum(dl, 0) - np.cumsum(dl, 0)[j0]                               # Σ_{r=j+1}^t Δ_r
    lam = (-ssm.A.real).cpu().numpy()
    steps = np.arange(L) - j0
    G = torch.linalg.vector_norm(closed_form_factors(ssm.to(x.device), x)["G"][j0], dim=-1).cpu().numpy()
    comps = []
    for d in range(ssm.channels):
        for n in range(ssm.states):
            mean_delta = float(dl[j0 + 1:, d, n].mean()) if j0 + 1 < L else math.nan
            rate, _, pts = fit_log_linear(s[j0 + 1:, d, n], steps[j0 + 1:])
            lam_fit, _, _ = fit_log_linear(s[j0 + 1:, d, n], dtime[j0 + 1:, d, n])
            comps.append({"d": d, "n": n, "lambda": float(lam[d, n]), "mean_delta": mean_delta,
                          "rate_theory": float(lam[d, n]) * mean_delta, "rate_fit": rate,
                          "lambda_fit": lam_fit, "points": pts, "G": float(G[d, n])})

    def worst(key_fit, key_th):
        devs = [abs(c[key_fit] - c[key_th]) / c[key_th] for c in comps
                if c[key_th] > 0 and math.isfinite(c[key_fit])]
        return max(devs) if devs else math.nan

    metrics = {
        "max_rel_err_state": max_relative_error(J, Jc),
        "max_rel_err_output": max_relative_error(Jy, Jyc),
        "rate_rel_dev_max": worst("rate_fit", "rate_theory"),
        "lambda_rel_dev_max": worst("lambda_fit", "lambda"),
        "components_fitted": sum(math.isfinite(c["rate_fit"]) for c in comps),
        "components": len(comps),
    }
    fitted = [c for c in comps if math.isfinite(c["rate_fit"])]
    if fitted:
        metrics["rate_fit_mean"] = float(np.mean([c["rate_fit"] for c in fitted]))
        metrics["rate_theory_mean"] = float(np.mean([c["rate_theory"] for c in fitted]))
    order = sorted(fitted, key=lambda c: c["rate_theory"])
    picks = [order[i] for i in sorted({round(k * (len(order) - 1) / max(curves - 1, 1))
                                       for k in range(min(curves, len(order)))})] if order else []
    series = {
        "experiment": "decay", "j": j, "steps": steps[j0:],
        "heat": torch.linalg.vector_norm(J.reshape(L, L, -1), dim=-1).cpu().numpy(),
        "states": [{"d": c["d"], "n": c["n"], "sensitivity": s[j0:, c["d"], c["n"]],
                    "lemma1": c["G"] * np.exp(-c["rate_theory"] * steps[j0:])} for c in picks],
        "multipliers": np.exp(-(lam[None] * dl)).ravel(),
    }
    return {"metrics": metrics, "components": comps, "series": series}
