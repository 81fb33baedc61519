"""Least-squares projection onto a set of basis functions on the grid, and the L² errors it leaves (DESIGN §1).

For basis values G (…, L, N) and a signal x (…, L), the fit is x̂ = G c with c = argmin ‖x − G c‖ in the grid norm
‖f‖² = (1/L) Σ_i f_i² — the projection proj_{G_N}(ρ) of eqs. (25)-(26), computed for any (not necessarily orthogonal)
basis. Everything is batched over the leading axes.
"""
from __future__ import annotations

import torch


def least_squares(G: torch.Tensor, x: torch.Tensor):
    """Best coefficients and fit.

    Parameters
    ----------
    G : (…, L, N) basis values on the grid.
    x : (…, L) signal.

    Returns
    -------
    coef : (…, N), the minimum-norm least-squares coefficients (rank-deficient G is fine).
    fit : (…, L) = G @ coef.
    """
    if G.shape[-2] != x.shape[-1]:
        raise ValueError(f"basis has {G.shape[-2]} grid points but the signal has {x.shape[-1]}")
    coef = torch.linalg.pinv(G) @ x.unsqueeze(-1)
    coef = coef.squeeze(-1)
    return coef, (G @ coef.unsqueeze(-1)).squeeze(-1)


def errors(x: torch.Tensor, fit: torch.Tensor) -> dict:
    """``l2`` = ‖x − fit‖ and ``l2_sq`` = ‖x − fit‖² in the grid norm (DESIGN §1). Each of shape (…)."""
    l2_sq = ((x - fit) ** 2).mean(-1)
    return {"l2": l2_sq.sqrt(), "l2_sq": l2_sq}


def nested_l2_sq(G: torch.Tensor, x: torch.Tensor, *, rtol: float = 1e-10) -> torch.Tensor:
    """``l2_sq`` of the best fit on the first k columns of G, for every k = 1..N, in one pass.

    Orthonormalises the columns in order (classical Gram-Schmidt, applied twice for stability); a column that lies
    in the span of the previous ones (norm below ``rtol`` times its original norm) adds nothing. Then
    ‖x − proj_k x‖² = ‖x‖² − Σ_{i≤k} ⟨q_i, x⟩² with orthonormal q_i.

    Parameters
    ----------
    G : (…, L, N) basis values, x : (…, L).

    Returns
    -------
    (…, N) tensor: entry k−1 is the squared error with the first k basis functions.
    """
    if G.shape[-2] != x.shape[-1]:
        raise ValueError(f"basis has {G.shape[-2]} grid points but the signal has {x.shape[-1]}")
    L, N = G.shape[-2], G.shape[-1]
    scale = L ** -0.5                       # grid inner product ⟨f, g⟩ = f·g / L
    Q = G.new_zeros(G.shape)
    gains = []
    for k in range(N):
        v = G[..., k] * scale
        v0 = v.norm(dim=-1, keepdim=True)
        for _ in range(2):
            if k:
                v = v - (Q[..., :k] @ (Q[..., :k].transpose(-1, -2) @ v.unsqueeze(-1))).squeeze(-1)
        nv = v.norm(dim=-1, keepdim=True)
        keep = nv > rtol * v0.clamp_min(torch.finfo(G.dtype).tiny)
        q = torch.where(keep, v / nv.clamp_min(torch.finfo(G.dtype).tiny), torch.zeros_like(v))
        Q[..., k] = q
        gains.append((q * x).sum(-1) ** 2 * scale ** 2)
    total = (x ** 2).mean(-1)
    return (total.unsqueeze(-1) - torch.cumsum(torch.stack(gains, -1), -1)).clamp_min(0)
