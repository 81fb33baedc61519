"""Least-squares projection onto a set of basis functions on the grid, and the L² errors it leaves (docs/design.md §1).

For basis values G (…, L, N) and a signal x (…, L), the fit is x̂ = G c with c = argmin ‖x − G c‖ in the grid norm
‖f‖² = (1/L) Σ_i f_i² — the projection proj_{G_N}(ρ) of eqs. (25)-(26), computed for any (not necessarily orthogonal)
basis. Everything is batched over the leading axes.

Solver. Some bases are nearly dependent (S4D-Lin's damped exponentials reach a condition number ~1e15 at N = 48):
normal equations or a QR would then give answers that depend on the factorisation, and so does an SVD that keeps
singular values near the rounding level (at ε·σ_max the coefficients carry rounding amplified 1e12 times: two SVD
implementations then disagree in the fit's error at 3e-7). The lab uses the truncated SVD — the minimum-norm
least-squares solution — with singular values below :data:`RCOND` = 1e-10 times the largest treated as zero, on
every device (two implementations then agree to ~1e-9 at S4D-Lin, N = 48), and reports the condition number
beside the fit. Bases with a condition number below 1e10 (every other strategy of the lab) are not truncated.
"""
from __future__ import annotations

import torch


#: the truncated SVD's relative cutoff: singular values below RCOND·σ_max count as zero
RCOND = 1e-10


def condition_number(G: torch.Tensor) -> float:
    """Largest over smallest singular value of the basis G (L, N) on the grid (``inf`` when it is singular)."""
    sv = torch.linalg.svdvals(G)
    return float(sv[..., 0].max() / sv[..., -1].min()) if sv[..., -1].min() > 0 else float("inf")


def least_squares(G: torch.Tensor, x: torch.Tensor):
    """Best coefficients and fit.

    Parameters
    ----------
    G : (…, L, N) basis values on the grid.
    x : (…, L) signal.

    Returns
    -------
    coef : (…, N), the minimum-norm least-squares coefficients of the SVD truncated at :data:`RCOND`
        (rank-deficient G is fine).
    fit : (…, L) = G @ coef.
    """
    if G.shape[-2] != x.shape[-1]:
        raise ValueError(f"basis has {G.shape[-2]} grid points but the signal has {x.shape[-1]}")
    coef = torch.linalg.pinv(G, rtol=RCOND) @ x.unsqueeze(-1)
    coef = coef.squeeze(-1)
    return coef, (G @ coef.unsqueeze(-1)).squeeze(-1)


def errors(x: torch.Tensor, fit: torch.Tensor) -> dict:
    """``l2`` = ‖x − fit‖ and ``l2_sq`` = ‖x − fit‖² in the grid norm (docs/design.md §1). Each of shape (…)."""
    l2_sq = ((x - fit) ** 2).mean(-1)
    return {"l2": l2_sq.sqrt(), "l2_sq": l2_sq}


def nested_l2_sq(G: torch.Tensor, x: torch.Tensor, *, rtol: float = 1e-10) -> torch.Tensor:
    """``l2_sq`` of the best fit on the first k columns of G, for every k = 1..N, in one pass.

    Orthonormalises the columns in order (classical Gram-Schmidt, applied twice for stability); a column that lies
    in the span of the previous ones (norm below ``rtol`` times its original norm) adds nothing. The residual is
    carried along, r_k = r_{k−1} − q_k ⟨q_k, r_{k−1}⟩, and its norm taken at each k — never ‖x‖² minus the kept
    energy, which cancels on a signal with a large mean.

    Parameters
    ----------
    G : (…, L, N) basis values, x : (…, L).

    Returns
    -------
    (…, N) tensor: entry k−1 is the squared error with the first k basis functions.
    """
    if G.shape[-2] != x.shape[-1]:
        raise ValueError(f"basis has {G.shape[-2]} grid points but the signal has {x.shape[-1]}")
    N = G.shape[-1]
    scale = G.shape[-2] ** -0.5             # grid inner product ⟨f, g⟩ = f·g / L
    tiny = torch.finfo(G.dtype).tiny
    Q = G.new_zeros(G.shape)
    r = x * scale
    out = []
    for k in range(N):
        v = G[..., k] * scale
        v0 = v.norm(dim=-1, keepdim=True)
        for _ in range(2):
            if k:
                v = v - (Q[..., :k] @ (Q[..., :k].transpose(-1, -2) @ v.unsqueeze(-1))).squeeze(-1)
        nv = v.norm(dim=-1, keepdim=True)
        q = torch.where(nv > rtol * v0.clamp_min(tiny), v / nv.clamp_min(tiny), torch.zeros_like(v))
        Q[..., k] = q
        r = r - q * (q * r).sum(-1, keepdim=True)
        out.append((r * r).sum(-1))
    return torch.stack(out, -1) if out else x.new_zeros(*x.shape[:-1], 0)
