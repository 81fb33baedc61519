"""Jacobians of a token-wise SSM: autograd through the scan, and the closed form of App. B (eqs. 35-38).

    J[t, j, d, n, k] = ∂h_t[d, n] / ∂x_j[k]          (t, j = 1..L;  J = 0 for t < j)

:func:`jacobian_autograd` differentiates the layer's own ``ssm_params`` and :func:`kernels.selective_scan` (hence
the Triton kernels on a GPU); :func:`jacobian_closed_form` evaluates eq. (35) with Mamba's parameters (36),

    ∂h_t/∂x_j = exp(A Σ_{r=j+1}^{t} Δ_r)   (eq. 37)  ·  G_j   (eq. 38),

keeping every term from the input dependence of Δ_j, B_j and u_j, so it is exact (not only the bound (40)). For the
output y_t = Re Σ_n C_t[n] h_t[·, n] the readout adds (∂C_j/∂x_j) h_j at t = j. Float64 throughout (complex128
states for complex A); arrays index time from 0.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from tqdm import tqdm

from kernels import selective_scan
from signals.checks import check_int

from ..layers.token import TokenSSM, activation_grad, token_ssm

TARGETS = ("state", "output")
MAX_JACOBIAN_ENTRIES = 1 << 25
REL_FLOOR = 1e-12       # entries below REL_FLOOR · max|ref| are compared against that floor (max_relative_error)


def _as_float64(layer, device):
    """A float64 copy of a layer on ``device`` (complex parameters to complex128, which Module.to would drop)."""
    if isinstance(layer, TokenSSM):
        return layer.to(device, torch.float64)
    layer = copy.deepcopy(layer)
    for p in layer.parameters():
        p.data = p.data.to(device=device, dtype=torch.complex128 if p.is_complex() else torch.float64)
    return layer


def _check_sequence(ssm: TokenSSM, x: torch.Tensor):
    if x.dim() != 2 or x.shape[1] != ssm.d_in:
        raise ValueError(f"x must have shape (L, d_in={ssm.d_in}), got {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"sequence length must be >= 1, got {x.shape[0]}")


def _check_size(dim: int, nstate: int, d_in: int, L: int, target: str):
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    entries = L * L * dim * d_in * (nstate if target == "state" else 1)
    if entries > MAX_JACOBIAN_ENTRIES:
        raise ValueError(f"the Jacobian would have {entries} entries (L={L}, d={dim}, N={nstate}, d_in={d_in}), "
                         f"more than {MAX_JACOBIAN_ENTRIES}: use a shorter length or a smaller d or N")


def jacobian_autograd(layer, x: torch.Tensor, *, target: str = "state", backend: str = "auto",
                      rows_per_pass: int = 2048, progress: bool = False) -> torch.Tensor:
    """Sensitivities by reverse-mode autograd through ``layer.ssm_params`` and :func:`kernels.selective_scan`.

    Parameters
    ----------
    layer : a :class:`TokenSSM` or a mixer of :mod:`ssm.layers` (anything with ``ssm_params(x)``); it is copied to
        float64 on x's device.
    x : (L, d_in) one input sequence (float64).
    target : ``"state"``: J (L, L, D, N, d_in) = ∂h_t[d, n]/∂x_j[k], complex when the state is;
        ``"output"``: J (L, L, D, d_in) = ∂y_t[d]/∂x_j[k].

    Every scalar output is one batch element of one scan: the sequence is copied once per row, h_t[:, n] is read
    out through C = e_n (C = i·e_n for the imaginary part: Re(i h) = −Im h), and one backward pass of the sum of
    the picked outputs gives every copy's gradient, one row of J each. ``progress`` shows a bar over the passes
    on a terminal.
    """
    if x.dim() != 2:
        raise ValueError(f"x must have shape (L, d_in), got {tuple(x.shape)}")
    layer = _as_float64(layer, x.device)
    x = x.to(torch.float64)
    L, d_in = x.shape
    with torch.no_grad():
        probe = layer.ssm_params(x.T[None])
    dim, nstate = probe["A"].shape
    _check_size(dim, nstate, d_in, L, target)
    complex_state = any(probe[k].is_complex() for k in ("A", "B", "C"))
    parts = 2 if (target == "state" and complex_state) else 1
    n_rows = (parts * nstate if target == "state" else 1) * L * dim        # rows: (part, n, t, d) or (t, d)
    rows = torch.arange(n_rows, device=x.device)
    d_idx, rest = rows % dim, rows // dim
    t_idx, rest = rest % L, rest // L
    n_idx, p_idx = rest % nstate, rest // nstate
    shape = (L, L, dim, nstate, d_in) if target == "state" else (L, L, dim, d_in)
    J = torch.zeros(shape, dtype=torch.complex128 if parts == 2 else torch.float64, device=x.device)
    for lo in tqdm(range(0, n_rows, rows_per_pass), desc="autograd rows", unit="pass", leave=False,
                   disable=None if progress else True):
        sl = slice(lo, min(lo + rows_per_pass, n_rows))
        m = sl.stop - sl.start
        X = x.T.expand(m, d_in, L).clone().requires_grad_(True)
        p = layer.ssm_params(X)
        C = p["C"]
        if target == "state":
            sel = F.one_hot(n_idx[sl], nstate).to(torch.float64)                        # (m, N)
            if parts == 2:
                sel = sel * torch.where(p_idx[sl] == 1, 1j, 1.0).to(torch.complex128)[:, None]
            C = sel[:, :, None].expand(m, nstate, L)
        y = selective_scan(p["u"], p["delta"], p["A"], p["B"], C, delta_mode=p["delta_mode"],
                           input_delta=p["input_delta"], backend=backend)                # (m, D, L)
        picked = y[torch.arange(m, device=x.device), d_idx[sl], t_idx[sl]]
        (grad,) = torch.autograd.grad(picked.sum(), X)
        grad = grad.transpose(1, 2)                                                     # (m, L, d_in)
        if target == "output":
            J[t_idx[sl], :, d_idx[sl]] = grad
            continue
        for part in range(parts):
            mask = p_idx[sl] == part
            g = grad[mask] if part == 0 else -1j * grad[mask]                            # ∂Im h = −∂Re(i h)
            J[t_idx[sl][mask], :, d_idx[sl][mask], n_idx[sl][mask]] += g
    return J


def retention(ssm: TokenSSM, x: torch.Tensor) -> torch.Tensor:
    """The first factor of eq. (35) with (36): P[t, j] = ∏_{r=j+1}^{t} exp(Δ_r A) = exp(A Σ_{r=j+1}^t Δ_r) (eq. 37).

    x : (L, d_in). Returns P (L, L, D, N), zero for t < j and one for t = j.
    """
    S = torch.cumsum(ssm.delta_grid(x), 0)                                        # Σ_{r≤t} Δ_r
    tt = torch.arange(x.shape[0], device=x.device)
    causal = (tt[:, None] >= tt[None, :])[:, :, None, None]
    gap = torch.where(causal, S[:, None] - S[None, :], torch.zeros((), dtype=S.dtype, device=S.device))
    return torch.exp(ssm.A * gap) * causal


def closed_form_factors(ssm: TokenSSM, x: torch.Tensor) -> dict:
    """The ingredients of eqs. (35)-(38) for one sequence x (L, d_in), from the parameters alone (no scan).

    Returns a dict of tensors:
      ``P``   (L, L, D, N)          retention exp(A Σ_{r=j+1}^t Δ_r)                         (eq. 37)
      ``h``   (L, D, N)             h_t = Σ_{s≤t} P[t, s] ζ_s u_s B_s                          (eq. 4, 42)
      ``dm``  (L, D, N, d_in)       ∂(ζ_j u_j[d] B_j[n])/∂x_j[k], the input term of (38); ζ = Δ or 1
      ``dlam`` (L, D, N, d_in)      ∂Λ̄_j/∂x_j = A e^{Δ_j A} ∂Δ_j/∂x_j
      ``G``   (L, D, N, d_in)       dm + dlam · h_{j−1}                                       (eq. 38)
      ``dC``  (L, N, d_in)          ∂C_j/∂x_j;   ``C`` (L, N);   ``delta`` (L, D, N) Δ_t per state.
    """
    _check_sequence(ssm, x)
    L, d_in = x.shape
    dim, nstate = ssm.channels, ssm.states
    (z_u, u), (z_d, _), (z_B, B), (z_C, C) = ssm._maps(x)
    dl = ssm.delta_grid(x)
    P = retention(ssm, x)
    zeta = dl if ssm.input_delta else torch.ones_like(dl)
    drive = zeta * u[:, :, None] * B[:, None, :]                                   # B̄_s u_s, (L, D, N)
    common = torch.promote_types(P.dtype, drive.dtype)
    h = torch.einsum("tsdn,sdn->tdn", P.to(common), drive.to(common))
    h_prev = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
    # token-wise derivatives at step j
    if ssm.W_u is None:
        du = torch.eye(dim, dtype=x.dtype, device=x.device).expand(L, dim, d_in)
    else:
        du = activation_grad(ssm.act_u, z_u)[:, :, None] * ssm.W_u[None]                 # (L, D, d_in)
    zero = torch.zeros(L, nstate, d_in, dtype=x.dtype, device=x.device)
    dB = zero if ssm.W_B is None else activation_grad(ssm.act_B, z_B)[:, :, None] * ssm.W_B[None]
    dC = zero if ssm.W_C is None else activation_grad(ssm.act_C, z_C)[:, :, None] * ssm.W_C[None]
    if ssm.delta_kind == "none":
        ddelta = torch.zeros(L, dim, nstate, d_in, dtype=x.dtype, device=x.device)
    else:
        dk = torch.sigmoid(z_d)[:, :, None] * ssm.W_delta[None]                    # (L, K, d_in)
        ddelta = (dk[:, None] if ssm.delta_kind == "state" else dk[:, :, None]).expand(L, dim, nstate, d_in)
    dzeta = ddelta if ssm.input_delta else torch.zeros_like(ddelta)
    dm = (dzeta * (u[:, :, None] * B[:, None, :])[..., None]
          + zeta[..., None] * du[:, :, None, :] * B[:, None, :, None]
          + zeta[..., None] * u[:, :, None, None] * dB[:, None, :, :])
    dlam = (ssm.A * torch.exp(dl * ssm.A))[..., None] * ddelta
    G = dm + dlam * h_prev[..., None]
    return {"P": P, "h": h, "dm": dm, "dlam": dlam, "G": G, "dC": dC, "C": C, "delta": dl}


def jacobian_closed_form(layer, x: torch.Tensor, *, target: str = "state") -> torch.Tensor:
    """Sensitivities from the closed form of App. B: eq. (35) with Mamba's discretization (36).

        ∂h_t[d,n]/∂x_j[k] = P[t, j, d, n] · G_j[d, n, k]                                   (t ≥ j, else 0)
        P[t, j]  = exp(A Σ_{r=j+1}^t Δ_r)                                                   (eq. 37)
        G_j      = ∂(ζ_j u_j[d] B_j[n])/∂x_j[k] + A e^{Δ_j A} ∂Δ_j/∂x_j[k] · h_{j−1}[d, n]   (eq. 38)
        h_{j−1}  = Σ_{s<j} exp(A Σ_{r=s+1}^{j−1} Δ_r) ζ_s u_s[d] B_s[n]                      (eq. 38's sum, eq. 42)

    with ζ_j = Δ_j (B̄_j = B_j Δ_j, eq. 36) or 1 when ``input_delta`` is False (eq. 15), Δ ≡ 1 and ∂Δ = 0 for S4D
    (eq. 6, which gives Lemma 1's e^{−λ(t−(j+1))} form). For ``target="output"`` (y_t = Re Σ_n C_t[n] h_t[d, n]):

        ∂y_t[d]/∂x_j[k] = Re Σ_n C_t[n] ∂h_t[d,n]/∂x_j[k] + [t = j] · Re Σ_n ∂C_j[n]/∂x_j[k] h_j[d, n]

    layer : a :class:`TokenSSM` or a mixer (read through :func:`token_ssm`); x : (L, d_in). Shapes as
    :func:`jacobian_autograd`.
    """
    ssm = token_ssm(layer).to(x.device)
    x = x.to(torch.float64)
    _check_sequence(ssm, x)
    L = x.shape[0]
    _check_size(ssm.channels, ssm.states, ssm.d_in, L, target)
    with torch.no_grad():
        f = closed_form_factors(ssm, x)
        J = f["P"][..., None] * f["G"][None]                                        # eq. (35)
        if target == "state":
            return J
        C = f["C"].to(J.dtype) if J.is_complex() else f["C"]
        Jy = torch.einsum("tn,tjdnk->tjdk", C, J)
        h = f["h"]
        local = torch.einsum("jnk,jdn->jdk", f["dC"].to(h.dtype) if h.is_complex() else f["dC"], h)
        jj = torch.arange(L, device=x.device)
        Jy[jj, jj] = Jy[jj, jj] + local
        return Jy.real if Jy.is_complex() else Jy


def max_relative_error(a: torch.Tensor, ref: torch.Tensor, floor: float = REL_FLOOR) -> float:
    """max over entries of |a − ref| / max(|ref|, floor · max|ref|): entrywise relative error, where entries far
    below the largest (including the exact zeros t < j) count relative to ``floor`` times the largest."""
    if a.shape != ref.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(ref.shape)}")
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    if scale == 0.0:
        return float((a - ref).abs().max()) if a.numel() else 0.0
    denom = ref.abs().clamp_min(floor * scale)
    return float(((a - ref).abs() / denom).max())


def random_input(length: int, d_in: int, seed: int, device=None) -> torch.Tensor:
    """x (length, d_in) with i.i.d. N(0, 1) entries, float64, from ``seed``."""
    check_int("length", length)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(length, d_in, generator=g, dtype=torch.float64).to(device)
