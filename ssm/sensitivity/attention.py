"""Softmax attention's sensitivity (App. B, eqs. 44-45): the 1/t bound the SSMs' exponential is compared with.

:class:`Attention` is one causal softmax-attention layer without normalisation or output map;
:func:`attention_jacobian_autograd` and :func:`attention_jacobian_closed_form` (eq. 44) compute ∂y_t/∂x_j two
ways and :func:`attention_experiment` checks the bound (45) and fits the power law of the decay.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from kernels import free_memory
from signals.checks import check_int

from .jacobians import MAX_JACOBIAN_ENTRIES, max_relative_error, random_input
from .lemma1 import fit_log_linear


@dataclass
class Attention:
    """One causal softmax-attention layer without normalisation or output map (App. B):

        y_t = Σ_{s≤t} a_ts W_V x_s,   a_ts = e^{x_t^T W_Q^T W_K x_s} / Σ_{r≤t} e^{x_t^T W_Q^T W_K x_r}.

    W_Q, W_K, W_V : (d, d). ``forward(x)``: x (..., L, d) → y (..., L, d).
    """

    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor

    @classmethod
    def random(cls, d: int, seed: int, scale: float = 1.0) -> "Attention":
        """Weights with i.i.d. N(0, scale²/d) entries (float64), from ``seed``."""
        check_int("d", d)
        g = torch.Generator().manual_seed(seed)
        W = [torch.randn(d, d, generator=g, dtype=torch.float64) * scale / math.sqrt(d) for _ in range(3)]
        return cls(*W)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """s_tr = x_t^T W_Q^T W_K x_r for x (..., L, d): (..., L, L), −inf above the diagonal (r > t)."""
        s = (x @ self.W_Q.T) @ (x @ self.W_K.T).transpose(-1, -2)
        L = x.shape[-2]
        return s.masked_fill(torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1), -math.inf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.scores(x), dim=-1) @ (x @ self.W_V.T)

    __call__ = forward


def attention_jacobian_autograd(att: Attention, x: torch.Tensor, rows_per_pass: int = 64,
                                progress: bool = False) -> torch.Tensor:
    """J (L, L, d, d) = ∂y_t[o]/∂x_j[k] by reverse-mode autograd: one batch copy of x per output row (t, o),
    ``rows_per_pass`` copies per backward pass (each holds a few (L, L) score matrices). ``progress`` shows a bar
    over the passes on a terminal."""
    x = x.to(torch.float64)
    L, d = x.shape
    J = torch.zeros(L, L, d, d, dtype=torch.float64, device=x.device)
    rows = torch.arange(L * d, device=x.device)
    for lo in tqdm(range(0, L * d, rows_per_pass), desc="autograd rows", unit="pass", leave=False,
                   disable=None if progress else True):
        r = rows[lo:lo + rows_per_pass]
        X = x.expand(len(r), L, d).clone().requires_grad_(True)
        y = att(X)[torch.arange(len(r), device=x.device), r // d, r % d]
        (grad,) = torch.autograd.grad(y.sum(), X)
        J[r // d, :, r % d] = grad
    return J


def _attention_parts(att: Attention, x: torch.Tensor):
    """Scores s (L, L), weights a (L, L), output y (L, d) and the bracket of eq. (44), (L, L, d, d):
    W_V + (W_V x_j − y_t)(W_K^T W_Q x_t)^T at [t, j]."""
    s = att.scores(x)
    a = torch.softmax(s, dim=-1)
    v = x @ att.W_V.T
    y = a @ v
    g = x @ att.W_Q.T @ att.W_K                                                  # row t: (W_K^T W_Q x_t)^T
    bracket = att.W_V[None, None] + (v[None, :, :] - y[:, None, :])[..., None] * g[:, None, None, :]
    return s, a, y, bracket


def attention_jacobian_closed_form(att: Attention, x: torch.Tensor) -> torch.Tensor:
    """∂y_t/∂x_j for j < t from eq. (44), vector form (zero for j ≥ t, where x_t's query also moves):

        ∂y_t/∂x_j = a_tj [ W_V + (W_V x_j − y_t) (W_K^T W_Q x_t)^T ].
    """
    x = x.to(torch.float64)
    _, a, _, bracket = _attention_parts(att, x)
    L = x.shape[0]
    strict = torch.ones(L, L, dtype=torch.bool, device=x.device).tril(-1)
    return (a * strict)[..., None, None] * bracket


def attention_memory(length: int, d: int, rows_per_pass: int) -> int:
    """Estimated peak bytes of :func:`attention_experiment`: J and the bracket of eq. (44) (L²d² float64 each) and
    the (L, L) matrices that one autograd pass keeps for each of its ``rows_per_pass`` copies (about six)."""
    return 2 * 8 * length * length * d * d + 6 * 8 * rows_per_pass * length * length


def _rows_per_pass(length: int, budget: int) -> int:
    """At most 64 autograd copies per pass, fewer where 64 of them would take more than ``budget`` bytes."""
    return int(max(1, min(64, budget // (6 * 8 * length * length))))


def attention_experiment(*, length: int = 64, d: int = 4, j: int = 1, seed: int = 0, scale: float = 0.3,
                         device=None, progress: bool = False) -> dict:
    """Softmax attention's sensitivity and its 1/t bound (eq. 45), for comparison with Lemma 1.

    Checks autograd against eq. (44) on every j < t, and the bound

        ‖∂y_t/∂x_j‖ ≤ (C / t) · (min_{r≤t} e^{s_tr})^{−1},   C = max_{j<t} e^{s_tj} ‖W_V + (W_V x_j − y_t)(W_K^T W_Q x_t)^T‖

    (the softmax denominator is at least t·min_r e^{s_tr}; norms are Frobenius; t is 1-based). The decay of
    ‖∂y_t/∂x_j‖ in t is fitted as a power law t^{−p} (the bound's p = 1), against the SSMs' exponential.
    ``scale`` sets the spread of the scores (weights N(0, scale²/d)): the bound holds for any, and the fitted p is
    close to 1 when the attention is spread over the prefix (small scale), noisier when a few scores dominate.

    The cost grows as L³d²: a size whose Jacobian exceeds ``MAX_JACOBIAN_ENTRIES`` entries, or whose estimated
    memory (:func:`attention_memory`) exceeds what ``device`` has free, is refused before anything is computed.

    Returns ``{"metrics", "series"}``; series: ``heat`` (L, L) = ‖∂y_t/∂x_j‖ (0 for j ≥ t), ``t`` (t > j),
    ``sensitivity`` = ‖∂y_t/∂x_j‖ there, ``bound`` (45) per t, ``weights`` = every a_tj with j < t.
    """
    check_int("length", length, 2)
    check_int("j", j, 1, length)
    check_int("d", d)
    entries = length * length * d * d
    if entries > MAX_JACOBIAN_ENTRIES:
        raise ValueError(f"the attention Jacobian would have {entries} entries (L={length}, d={d}), more than "
                         f"{MAX_JACOBIAN_ENTRIES}: use a shorter length or a smaller d")
    dev = torch.device("cpu") if device is None else torch.device(device)
    free = free_memory(dev)
    rows = _rows_per_pass(length, free // 4)
    need = attention_memory(length, d, rows)
    if need > free:
        raise ValueError(f"the attention Jacobian at L={length}, d={d} needs about {need / 2**30:.1f} GiB, more than "
                         f"the {free / 2**30:.1f} GiB free on {dev.type}: use a shorter length")
    att = Attention.random(d, seed, scale)
    x = random_input(length, d, seed + 1)
    J = attention_jacobian_autograd(Attention(*(w.to(dev) for w in (att.W_Q, att.W_K, att.W_V))),
                                    x.to(dev), rows_per_pass=rows, progress=progress).cpu()
    Jc = attention_jacobian_closed_form(att, x)
    s, a, _, bracket = _attention_parts(att, x)
    lower = torch.ones(length, length, dtype=torch.bool).tril()
    strict = lower.tril(-1)
    norms = torch.linalg.matrix_norm(J)                                          # (L, L) Frobenius
    C = float((torch.exp(s) * torch.linalg.matrix_norm(bracket))[strict].max())  # max e^{s_tj} ‖bracket_tj‖
    t1 = torch.arange(1, length + 1, dtype=torch.float64)
    min_e = torch.exp(s.masked_fill(~lower, math.inf).min(-1).values)
    bound_t = C / (t1 * min_e)                                                   # eq. (45), one value per t
    ratio = (norms / bound_t[:, None])[strict]
    j0 = j - 1
    curve = norms[j0 + 1:, j0].numpy()
    t_after = t1[j0 + 1:].numpy()
    p, _, pts = fit_log_linear(curve, np.log(t_after))
    metrics = {
        "max_rel_err": max_relative_error(J[strict], Jc[strict]),
        "bound_C": C, "max_ratio_to_bound": float(ratio.max()), "bound_holds": bool((ratio <= 1 + 1e-12).all()),
        "power_fit": p, "power_theory": 1.0, "points": pts,
    }
    series = {
        "experiment": "attention", "j": j, "heat": norms.masked_fill(~lower, 0.0).numpy(), "t": t_after,
        "sensitivity": curve, "bound": bound_t[j0 + 1:].numpy(), "weights": a[strict].numpy(),
    }
    return {"metrics": metrics, "series": series}
