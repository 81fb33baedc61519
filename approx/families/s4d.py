"""S4D bases g(s) = B · exp(−λ (1 − s)) (eq. 9), realised through the scan (:mod:`approx.bases.s4d`).

Strategies: ``fourier`` (λ = −i2πk, the Fourier limit: 1, cos 2πks, −sin 2πks), ``s4d-lin`` (λ_k = ½ + iπk),
``best`` (λ = −i2πk at the signal's N largest Fourier terms) and ``learned`` (⌈N/2⌉ complex λ trained by Adam,
:mod:`approx.learned`; sweeps only).
"""
from __future__ import annotations

import torch

from .. import bases
from ..learned import train_s4d_bases
from ..lstsq import nested_l2_sq
from ..registry import FitParts, Strategy, register
from .shared import fourier_chosen, fourier_labels, fourier_theory

LIN_CAVEAT = "damped exponentials (S4D-Lin) are not the Fourier basis the bound is proved for"
LEARNED_CAVEAT = "learned exponentials are not the Fourier basis the bound is proved for"


def _fourier_fit(x, n, settings):
    """The first n real functions of λ = −i2πk: 1, cos 2πks, −sin 2πks."""
    L = x.shape[-1]
    bases.check_fourier_terms(n, L)
    G = bases.s4d_basis(bases.fourier_lambdas(n), L, backend=settings.backend, dtype=x.dtype, device=x.device)[:, :n]
    k, kind = bases.fourier_index(n)
    labels = ["1" if f == 0 else f"{'cos' if t == 0 else '−sin'} 2π·{f}s" for f, t in zip(k.tolist(), kind.tolist())]
    params = {"frequencies": k.tolist(), "kinds": ["cos" if t == 0 else "-sin" for t in kind.tolist()],
              "lambdas": [[0.0, -2 * torch.pi * f] for f in k.tolist()]}
    return FitParts(G, G, labels, params, bases.fourier_functions(k, kind, L, dtype=x.dtype, device=x.device))


def _lin_fit(x, n, settings):
    L = x.shape[-1]
    lam = bases.s4d_lin_lambdas(n)
    G = bases.s4d_basis(lam, L, backend=settings.backend, dtype=x.dtype, device=x.device)[:, :n]
    labels = []
    for value in lam.tolist():
        name = f"λ = {value.real:g}{value.imag:+.4g}i"
        labels += [f"Re, {name}", f"Im, {name}"] if value.imag else [f"Re, {name}"]
    params = {"lambdas": [[v.real, v.imag] for v in lam.tolist()], "time_scale": "the signal spans one unit"}
    return FitParts(G, G, labels[:n], params)


def _best_columns(x, n, backend):
    """(…, L, n) scan-realised functions at the n largest Fourier terms of each row of x (…, L), with (k, kind)."""
    L = x.shape[-1]
    k, kind = fourier_chosen(x, n, "best")
    freqs = torch.unique(k)
    g = bases.s4d_basis_complex(bases.fourier_lambdas(2 * int(freqs.max()) + 1)[freqs], L, backend=backend,
                                dtype=x.dtype, device=x.device)            # (L, F)
    col = torch.searchsorted(freqs, k).to(x.device)
    # exp(i2πk(1 − s)) = cos 2πks − i sin 2πks: Re gives the cosine, −Im the sine
    re, im = g.real[:, col], -g.imag[:, col]                                 # (L, …, n)
    if x.dim() > 1:
        re, im = re.movedim(0, -2), im.movedim(0, -2)                       # (…, L, n)
    G = torch.where((kind == 0).to(x.device)[..., None, :], re, im)
    return G, k, kind


def _best_fit(x, n, settings):
    G, k, kind = _best_columns(x, n, settings.backend)
    params = {"frequencies": k.tolist(), "kinds": ["cos" if t == 0 else "sin" for t in kind.tolist()],
              "lambdas": [[0.0, -2 * torch.pi * f] for f in k.tolist()]}
    ideal = bases.fourier_functions(k, kind, x.shape[-1], dtype=x.dtype, device=x.device)
    return FitParts(G, G, fourier_labels(k, kind), params, ideal)


def _shared_sweep(lambdas):
    """One basis for every trial (built once; a trial costs only its projection)."""
    def sweep(x, n_max, settings, params):
        L = x.shape[-1]
        G = bases.s4d_basis(lambdas(n_max), L, backend=settings.backend, dtype=x.dtype, device=x.device)[:, :n_max]
        return nested_l2_sq(G, x)
    return sweep


def _best_sweep(x, n_max, settings, params):
    return nested_l2_sq(_best_columns(x, n_max, settings.backend)[0], x)


def _train(m, n_values, trials, settings, options):
    """Train ⌈N/2⌉ complex λ per trial at each N of ``n_values`` (docs/rates.md, learned bases)."""
    import signals
    x = signals.piecewise(m, options["samples"], options["seed"], batch=trials, device=options["device"])
    out, info = {}, []
    for n in n_values:
        r = train_s4d_bases(x, n, steps=options["steps"], seed=options["seed"] + n, restarts=options["restarts"],
                            backend=settings.backend)
        out[n] = r["l2_sq"]
        info.append({"n": n, "median_l2_sq": float(r["l2_sq"].median()), "train_s": round(r["wall_s"], 3),
                     "final_loss": r["loss"][-1] if r["loss"] else None,
                     "re_lam_median": float(r["lam"].real.median()),
                     "abs_im_lam_median": float(r["lam"].imag.abs().median())})
    return x, out, info


def _with_caveat(caveat):
    return lambda m: {**fourier_theory(m), "caveat": caveat}


register(Strategy(
    "s4d", "fourier", "λ = −i2πk (the Fourier limit of eq. 9): 1, cos 2πks, −sin 2πks, … through the scan",
    "S4D, λ = −i2πk", fit=_fourier_fit, sweep=_shared_sweep(bases.fourier_lambdas), theory=fourier_theory,
    ideal=("fourier", "partial"), max_n=bases.max_fourier_terms, style=("o", "-"), default_fit=True,
    default_rates=True))
register(Strategy(
    "s4d", "s4d-lin", "λ_k = ½ + iπk (S4D-Lin; the signal spans one unit of time), the first N real functions",
    "S4D-Lin", fit=_lin_fit, sweep=_shared_sweep(bases.s4d_lin_lambdas), theory=_with_caveat(LIN_CAVEAT),
    max_n=lambda L: L, style=("^", "-")))
register(Strategy(
    "s4d", "best", "λ = −i2πk at the frequencies of the signal's N largest Fourier terms (Re or Im each)",
    "S4D at the best N frequencies", fit=_best_fit, sweep=_best_sweep, theory=fourier_theory,
    ideal=("fourier", "best"), max_n=bases.max_fourier_terms, style=("v", "-")))
register(Strategy(
    "s4d", "learned", "⌈N/2⌉ complex λ trained by Adam through the scan (sweeps only)", "S4D, learned λ",
    train=_train, theory=_with_caveat(LEARNED_CAVEAT), style=("*", "")))
