"""Lemma 2 (eqs. 12-13) and the selective forgetting of Fig. 1 (right).

Lemma 2: when λ Σ_r Δ_r ≤ c the retention factor (37) stays ≥ e^{−c}, so a Mamba layer that pushes Δ toward 0
keeps an input for as long as it likes; :func:`lemma2_experiment` checks the bound on :func:`gated_layer`, an S6 or
Mamba-2 layer whose Δ a marker channel switches off, against an S4D of the same λ. :func:`forgetting_experiment`
shows the other half of selectivity on the KEEP n-TH construction of Cor. 2: Δ large (forget) up to step n, Δ ≈ 0
(keep) after.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from signals.checks import check_int

from ..layers.mixers import Mamba2Mixer, S6Mixer
from ..layers.token import TokenSSM, token_ssm
from .jacobians import (_as_float64, closed_form_factors, jacobian_autograd, jacobian_closed_form,
                        max_relative_error, random_input)


def _softplus_inverse(y: float) -> float:
    """z with softplus(z) = y > 0: z = y + log(1 − e^{−y})."""
    if not y > 0:
        raise ValueError(f"a step size Δ must be positive, got {y!r}")
    return y + math.log(-math.expm1(-y))


def gated_layer(kind: str = "s6", *, lam: float = 1.0, delta_on: float = 0.1, delta_off: float = 1e-4):
    """A 2-channel, 1-state mixer whose Δ is switched by a marker channel: Lemma 2's "Δ pushed toward 0".

    Input x_t = [ξ_t, g_t] (data ξ, marker g ∈ {0, 1}); Λ = −λ, B_t = C_t = 1 and

        Δ_t = softplus(w g_t + b),   b = softplus⁻¹(Δ_off),  w = softplus⁻¹(Δ_on) − b,

    so Δ_t = Δ_on while g_t = 1 and Δ_off after. ``kind="s6"`` builds an :class:`ssm.layers.S6Mixer` (d = 2, N = 1,
    Δ per channel, u = x); ``kind="mamba2"`` a :class:`ssm.layers.Mamba2Mixer` with kernel-1 identity convolutions
    (scalar Δ). The state h_t[0, 0] carries ξ; ∂Δ_t/∂ξ_t = 0, so (38) reduces to its input term B Δ_j.
    """
    if not lam >= 0:
        raise ValueError(f"lambda must be >= 0, got {lam!r}")
    b = _softplus_inverse(delta_off)
    w = _softplus_inverse(delta_on) - b
    if kind == "s6":
        layer = S6Mixer(2, 1)
    elif kind == "mamba2":
        layer = Mamba2Mixer(2, 1, conv_kernel=1, conv_activation="none")
    else:
        raise ValueError(f"the gated construction is an s6 or mamba2 layer, got {kind!r}")
    layer = _as_float64(layer, None)
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.A.fill_(-lam)
        layer.dt_proj.weight[:, 1] = w
        layer.dt_proj.bias.fill_(b)
        layer.B_proj.bias.fill_(1.0)
        layer.C_proj.bias.fill_(1.0)
        if kind == "mamba2":
            layer.u_proj.weight.copy_(torch.eye(2, dtype=torch.float64))
            for conv in (layer.conv_u, layer.conv_B, layer.conv_C):
                conv.weight.fill_(1.0)
    return layer


def gated_input(length: int, last_on: int, seed: int) -> torch.Tensor:
    """x (length, 2) = [ξ_t, g_t]: ξ ~ N(0, 1) from ``seed``, marker g_t = 1 for t ≤ last_on (1-based), else 0."""
    x = random_input(length, 2, seed)
    x[:, 1] = (torch.arange(1, length + 1) <= last_on).to(torch.float64)
    return x


def _s4d_reference(lam: float) -> TokenSSM:
    """A real 1-channel S4D (eq. 6) with Λ = −λ, B = C = 1, reading the data channel ξ of a gated input."""
    one = torch.ones(1, dtype=torch.float64)
    return TokenSSM(A=torch.full((1, 1), -lam, dtype=torch.float64), delta_kind="none",
                    W_u=torch.tensor([[1.0, 0.0]], dtype=torch.float64), b_B=one, b_C=one)


def lemma2_experiment(kind: str = "s6", *, length: int = 64, j: int = 16, lam: float = 1.0,
                      delta_on: float = 0.1, delta_off: float = 1e-4, seed: int = 0,
                      backend: str = "auto", device=None, progress: bool = False) -> dict:
    """Lemma 2 (eqs. 12-13): with Δ pushed toward 0 after j the sensitivity to x_j stays above e^{−c}·|…|.

    The layer is :func:`gated_layer` on :func:`gated_input` with the marker on up to j, so Δ_t = Δ_on for t ≤ j
    and Δ_off after. Over the horizon T = ``length``, eq. (12) holds with c = λ Σ_{r=1}^{T} Δ_r and eq. (13) reads

        |∂h_t/∂ξ_j| ≥ e^{−c} |∂(B(x_j) Δ(x_j) ξ_j)/∂ξ_j|      for every t = j..T,

    checked on the autograd sensitivities (which are also checked against the closed form). The S4D of eq. 6 with
    the same λ (Δ ≡ 1) is the contrast: its retention e^{−λ(t−j)} leaves the bound once λ(t − j) > c.

    Returns ``{"metrics", "series"}``; series: ``heat`` (L, L) = |∂h_t[0]/∂ξ_j|, ``steps`` = t − j for t ≥ j,
    ``selective`` and ``s4d`` the two layers' |∂h_t/∂ξ_j|, ``s4d_lemma1`` = e^{−λ(t−j)}, ``bound`` (13), and the
    multipliers e^{−λΔ_t} up to j and after it.
    """
    check_int("j", j, 1, length)
    layer = gated_layer(kind, lam=lam, delta_on=delta_on, delta_off=delta_off)
    x = gated_input(length, j, seed).to(device)
    ssm = token_ssm(layer).to(x.device)
    J = jacobian_autograd(layer, x, target="state", backend=backend, progress=progress)
    Jc = jacobian_closed_form(ssm, x, target="state")
    f = closed_form_factors(ssm, x)
    j0 = j - 1
    s = J[j0:, j0, 0, 0, 0].abs().cpu().numpy()                                  # t = j..T
    first = float(f["dm"][j0, 0, 0, 0].abs())                                   # |∂(B Δ ξ)/∂ξ_j|
    decay_term = float((f["dlam"][j0, 0, 0, 0] * (f["h"][j0 - 1, 0, 0] if j0 > 0 else 0.0)).abs())
    deltas = f["delta"][:, 0, 0].cpu().numpy()
    c = lam * float(deltas.sum())                                               # eq. (12) over the horizon
    c_after = lam * float(deltas[j0 + 1:].sum())
    bound = math.exp(-c) * first                                                # eq. (13)
    s4d = _s4d_reference(lam)
    Js = jacobian_autograd(s4d, x, target="state", backend=backend)[j0:, j0, 0, 0, 0].abs().cpu().numpy()
    below = np.nonzero(Js < bound)[0]
    steps = np.arange(length - j0)
    metrics = {
        "max_rel_err_state": max_relative_error(J, Jc),
        "c": c, "c_after_j": c_after, "bound": bound, "input_term": first, "decay_term": decay_term,
        "min_ratio": float((s / bound).min()),
        "bound_holds": bool((s >= bound * (1 - 1e-12)).all()),
        "retention_final": float(s[-1] / first),
        "s4d_retention_final": float(Js[-1]),
        "s4d_first_below_bound": int(below[0]) + j if below.size else None,
    }
    series = {
        "experiment": "lemma2", "layer": kind, "j": j, "heat": J[:, :, 0, 0, 0].abs().cpu().numpy(),
        "steps": steps, "selective": s, "s4d": Js, "s4d_lemma1": np.exp(-lam * steps.astype(float)), "bound": bound,
        "multipliers_to_j": np.exp(-lam * deltas[:j]), "multipliers_after_j": np.exp(-lam * deltas[j:]),
    }
    return {"metrics": metrics, "series": series}


def forgetting_experiment(*, length: int = 64, n: int = 5, vocab: int = 16, seed: int = 0,
                          s4d_lambda: float | None = None, backend: str = "auto", device=None,
                          progress: bool = False) -> dict:
    """Selective forgetting (Fig. 1, right) on the KEEP n-TH construction of Cor. 2 (:mod:`ssm.constructions.keep_nth`).

    Its S6 layer has Δ large up to step n (e^{−λΔ_t} ≈ 0: earlier tokens are erased) and Δ ≈ 0 after
    (e^{−λΔ_t} ≈ 1: the n-th token is kept). The sensitivities of the last state to every input token,
    ‖∂h_T/∂x_j‖ over the token channels (the position channel excluded), are one spike at j = n. An S4D of eq. (6)
    with one rate λ (default 1/T, slow enough to keep x_n) weighs every token by e^{−λ(T−j)}: indiscriminate.

    Returns ``{"metrics", "series"}``; series: ``heat`` (L, L) = ‖∂h_t/∂x_j‖ over the token channels,
    ``positions`` j = 1..T, ``selective`` = ‖∂h_T/∂x_j‖ of the construction, ``s4d`` the S4D's, ``s4d_lambda``,
    and the multipliers e^{−λΔ_t} up to n and after it.
    """
    from ..constructions import keep_nth

    check_int("n", n, 1, length)
    model = keep_nth.build(vocab, n, length=length, compressed=True)
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (1, length), generator=g)
    with torch.no_grad():
        x = model.embed(tokens)[0].T.to(device=device, dtype=torch.float64)    # (T, d): [cos, sin, t]
    layer = model.mixer
    ssm = token_ssm(layer).to(x.device)
    J = jacobian_autograd(layer, x, target="state", backend=backend, progress=progress)
    Jc = jacobian_closed_form(ssm, x, target="state")
    data = slice(0, x.shape[1] - 1)                                             # token channels, not the position
    sens = torch.linalg.vector_norm(J[-1, :, :, 0, data].reshape(length, -1), dim=-1).cpu().numpy()
    n0 = n - 1
    kept = float(sens[n0])
    others = np.delete(sens, n0)
    lam = float(-ssm.A.real[0, 0])
    e_decay = np.exp(-lam * closed_form_factors(ssm, x)["delta"][:, 0, 0].cpu().numpy())
    lam_s4d = 1.0 / length if s4d_lambda is None else s4d_lambda
    s4d_sens = np.exp(-lam_s4d * (length - 1 - np.arange(length)))              # |∂h_T/∂x_j| of S4D, B = 1
    metrics = {
        "max_rel_err_state": max_relative_error(J, Jc),
        "kept_sensitivity": kept,
        "max_other_over_kept": float(others.max() / kept) if others.size else 0.0,
        "max_earlier_over_kept": float(sens[:n0].max() / kept) if n0 > 0 else 0.0,
        "max_later_over_kept": float(sens[n0 + 1:].max() / kept) if n0 + 1 < length else 0.0,
        "mean_e_decay_up_to_n": float(e_decay[:n].mean()),
        "mean_e_decay_after_n": float(e_decay[n:].mean()) if n < length else math.nan,
        "s4d_lambda": lam_s4d,
        "s4d_min_other_over_kept": float(np.delete(s4d_sens, n0).min() / s4d_sens[n0]) if length > 1 else 0.0,
    }
    series = {
        "experiment": "forgetting", "n": n,
        "heat": torch.linalg.vector_norm(J[..., data].reshape(length, length, -1), dim=-1).cpu().numpy(),
        "positions": np.arange(1, length + 1), "selective": sens, "s4d": s4d_sens, "s4d_lambda": lam_s4d,
        "multipliers_to_n": e_decay[:n], "multipliers_after_n": e_decay[n:],
    }
    return {"metrics": metrics, "series": series}
