"""Sensitivity of SSM states to past inputs: Lemma 1, Lemma 2 and the softmax-attention bound (Sec. 4.2, App. B).

The object of study is the Jacobian of the state at time t with respect to the input at time j,

    J[t, j, d, n, k] = ∂h_t[d, n] / ∂x_j[k]          (t, j = 1..L;  J = 0 for t < j)

of a diagonal selective SSM whose parameters are *token-wise* functions of its input x_t ∈ R^{d_in} (the setting
of Lemma 1: eqs. 6, 7, 14 and 15 with no convolution across tokens). It is computed twice:

- by reverse-mode autograd through the layer's own ``ssm_params`` and the scan engine
  (:func:`kernels.selective_scan`, hence the Triton kernels on a GPU): :func:`jacobian_autograd`;
- by the closed form of App. B (:func:`jacobian_closed_form`), eq. (35) with Mamba's parameters (36):

      ∂h_t/∂x_j = [∏_{r=j+1}^{t} Λ̄_r] · [∂(B̄_j u_j)/∂x_j + (∂Λ̄_j/∂x_j) · Σ_{s<j} (∏_{r=s+1}^{j−1} Λ̄_r) B̄_s u_s]
                =  exp(A Σ_{r=j+1}^{t} Δ_r)   (eq. 37)  ·  G_j   (eq. 38)

  with Λ̄_r = exp(Δ_r A), B̄_j u_j = (Δ_j | 1) u_j ⊗ B_j; the last sum of (38) is h_{j−1}. Every term from the
  input dependence of Δ_j, B_j and u_j is kept, so the formula is exact (not only the bound (40)). For the layer
  output y_t = Re Σ_n C_t[n] h_t[·, n] the readout adds (∂C_j/∂x_j) h_j at t = j.

Lemma 1 reads the decay off (37): |∂h_t/∂x_j| = |G_j| · exp(Re A · Σ_{r=j+1}^t Δ_r), a rate λ = −Re A per step for
S4D (Δ ≡ 1) and λ·mean(Δ) for S6 / Mamba-2: :func:`decay_experiment` fits it to the autograd Jacobian.
Lemma 2 (eqs. 12-13): if λ Σ_{r≤t} Δ_r ≤ c the retention factor (37) stays ≥ e^{−c}: :func:`lemma2_experiment`
checks it on an S6 layer whose Δ is pushed toward 0 after j, and :func:`forgetting_experiment` shows the selective
forgetting of Fig. 1 (right). :func:`attention_experiment` treats softmax attention, whose sensitivity obeys the
1/t bound (45).

Conventions: float64 (complex128 states for complex A). Arrays index time from 0 (t = 0..L−1); results that speak
of the paper's j (1-based) say so.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from kernels import selective_scan

from .layers import Mamba2Mixer, MambaDeltaTMixer, S4DMixer, S6Mixer

DELTA_KINDS = ("none", "channel", "state", "scalar")
ACTS = ("none", "silu", "relu")
TARGETS = ("state", "output")
MAX_JACOBIAN_ENTRIES = 1 << 25
REL_FLOOR = 1e-12       # entries below REL_FLOOR · max|ref| are compared against that floor (max_relative_error)
_TINY = 1e-280          # sensitivities below this are underflow and left out of rate fits


# ---------------------------------------------------------------------------------------------------------------
# The token-wise SSM: parameters, forward, closed-form ingredients
# ---------------------------------------------------------------------------------------------------------------

def _softplus(z: torch.Tensor) -> torch.Tensor:
    """softplus(z) = log(1 + e^z), exact for every z (torch's F.softplus switches to z above 20)."""
    return torch.logaddexp(z, torch.zeros((), dtype=z.dtype, device=z.device))


def _act(name: str, z: torch.Tensor) -> torch.Tensor:
    return F.silu(z) if name == "silu" else F.relu(z) if name == "relu" else z


def _act_grad(name: str, z: torch.Tensor) -> torch.Tensor:
    """σ'(z): silu' = s(z)(1 + z(1 − s(z))), relu' = 1[z > 0], identity' = 1."""
    if name == "silu":
        s = torch.sigmoid(z)
        return s * (1 + z * (1 - s))
    if name == "relu":
        return (z > 0).to(z.dtype)
    return torch.ones_like(z)


def _affine(x: torch.Tensor, W, b):
    """x W^T + b on the last axis; W may be complex (x is then promoted); W = None means the constant b."""
    if W is None:
        return b.expand(*x.shape[:-1], b.shape[0])
    out = (x.to(W.dtype) if W.is_complex() else x) @ W.transpose(0, 1)
    return out if b is None else out + b


@dataclass
class TokenSSM:
    """A diagonal SSM whose parameters are token-wise functions of its input x_t ∈ R^{d_in} (eqs. 6, 7, 14, 15).

        u_t = σ_u(W_u x_t + b_u)            (D,)   (u_t = x_t when W_u is None; then D = d_in)
        Δ_t = softplus(W_Δ x_t + b_Δ)       (D,) "channel" (S6, eq. 14c) | (N,) "state" (Mamba-Δ⊤, eq. 15)
                                            | (1,) "scalar" (Mamba-2, eq. 14c right) | Δ ≡ 1 "none" (S4D, eq. 6)
        B_t = σ_B(W_B x_t + b_B),  C_t = σ_C(W_C x_t + b_C)   (N,)  (constant b_B, b_C when W_B, W_C are None)
        h_t = exp(Δ_t A) ⊙ h_{t−1} + (Δ_t if input_delta else 1) · u_t ⊗ B_t        (DESIGN §2, eq. 36)
        y_t = Re Σ_n C_t[n] h_t[:, n]

    Shapes: A (D, N), real or complex, Re A ≤ 0 (A = −λ); W_Δ (K, d_in), b_Δ (K,) with K = D, N or 1; W_B, W_C
    (N, d_in), b_B, b_C (N,) (complex allowed without an activation); W_u (D, d_in), b_u (D,). σ ∈ {none, silu,
    relu} (Mamba-2's kernel-1 convolutions fold into W, b and σ).
    """

    A: torch.Tensor
    delta_kind: str = "channel"
    W_delta: torch.Tensor | None = None
    b_delta: torch.Tensor | None = None
    W_B: torch.Tensor | None = None
    b_B: torch.Tensor | None = None
    W_C: torch.Tensor | None = None
    b_C: torch.Tensor | None = None
    W_u: torch.Tensor | None = None
    b_u: torch.Tensor | None = None
    act_u: str = "none"
    act_B: str = "none"
    act_C: str = "none"
    input_delta: bool = True

    def __post_init__(self):
        if self.delta_kind not in DELTA_KINDS:
            raise ValueError(f"delta_kind must be one of {DELTA_KINDS}, got {self.delta_kind!r}")
        if self.A.dim() != 2:
            raise ValueError(f"A must have shape (D, N), got {tuple(self.A.shape)}")
        if bool((self.A.real > 0).any()):
            raise ValueError("A must have non-positive real part (A = −λ with λ ≥ 0)")
        for name in ("act_u", "act_B", "act_C"):
            if getattr(self, name) not in ACTS:
                raise ValueError(f"{name} must be one of {ACTS}, got {getattr(self, name)!r}")
        dim, nstate = self.A.shape
        d_in = self.d_in
        if self.W_u is not None and tuple(self.W_u.shape) != (dim, d_in):
            raise ValueError(f"W_u must have shape (D={dim}, d_in), got {tuple(self.W_u.shape)}")
        if self.W_u is None and (self.b_u is not None or self.act_u != "none"):
            raise ValueError("b_u and act_u need W_u (u_t = x_t without it)")
        if self.b_u is not None and tuple(self.b_u.shape) != (dim,):
            raise ValueError(f"b_u must have shape ({dim},), got {tuple(self.b_u.shape)}")
        if self.delta_kind != "none":
            k = {"channel": dim, "state": nstate, "scalar": 1}[self.delta_kind]
            if self.W_delta is None or tuple(self.W_delta.shape) != (k, d_in):
                got = None if self.W_delta is None else tuple(self.W_delta.shape)
                raise ValueError(f"W_delta for delta_kind={self.delta_kind!r} must have shape {(k, d_in)}, got {got}")
            if self.b_delta is not None and tuple(self.b_delta.shape) != (k,):
                raise ValueError(f"b_delta must have shape ({k},), got {tuple(self.b_delta.shape)}")
        for name in ("B", "C"):
            W, b, act = getattr(self, f"W_{name}"), getattr(self, f"b_{name}"), getattr(self, f"act_{name}")
            if W is None and b is None:
                raise ValueError(f"{name} needs W_{name} or a constant b_{name}")
            if W is not None and tuple(W.shape) != (nstate, d_in):
                raise ValueError(f"W_{name} must have shape (N={nstate}, d_in={d_in}), got {tuple(W.shape)}")
            if b is not None and tuple(b.shape) != (nstate,):
                raise ValueError(f"b_{name} must have shape ({nstate},), got {tuple(b.shape)}")
            if act != "none" and any(t is not None and t.is_complex() for t in (W, b)):
                raise ValueError(f"act_{name}={act!r} needs a real W_{name}, b_{name}")

    @property
    def channels(self) -> int:
        return self.A.shape[0]

    @property
    def states(self) -> int:
        return self.A.shape[1]

    @property
    def d_in(self) -> int:
        return self.channels if self.W_u is None else self.W_u.shape[1]

    @property
    def complex_state(self) -> bool:
        return any(t is not None and t.is_complex() for t in (self.A, self.W_B, self.b_B, self.W_C, self.b_C))

    def to(self, device=None, dtype=torch.float64) -> "TokenSSM":
        """A copy on ``device`` in ``dtype`` (complex tensors go to the matching complex dtype)."""
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.detach().to(device=device, dtype=cdtype if v.is_complex() else dtype)
            moved[f.name] = v
        return replace(self, **moved)

    def _maps(self, x: torch.Tensor):
        """Pre-activations and values on x (..., L, d_in): (z_u, u), (z_Δ, Δ-values K-wide), (z_B, B), (z_C, C)."""
        z_u = x if self.W_u is None else _affine(x, self.W_u, self.b_u)
        z_d = None if self.delta_kind == "none" else _affine(x, self.W_delta, self.b_delta)
        z_B = _affine(x, self.W_B, self.b_B)
        z_C = _affine(x, self.W_C, self.b_C)
        return ((z_u, _act(self.act_u, z_u)), (z_d, None if z_d is None else _softplus(z_d)),
                (z_B, _act(self.act_B, z_B)), (z_C, _act(self.act_C, z_C)))

    def ssm_params(self, x: torch.Tensor) -> dict:
        """The scan's arguments for a channels-first input x (batch, d_in, L), as the mixers of :mod:`ssm.layers`.

        Returns ``{"u": (batch, D, L), "delta": (batch, D|N, L) or (batch, L), "A": (D, N), "B", "C": (batch, N, L),
        "delta_mode", "input_delta"}``; ``"none"`` (S4D) runs as the scalar mode with Δ ≡ 1.
        """
        if x.dim() != 3 or x.shape[1] != self.d_in:
            raise ValueError(f"x must have shape (batch, d_in={self.d_in}, L), got {tuple(x.shape)}")
        (_, u), (_, dl), (_, B), (_, C) = self._maps(x.transpose(1, 2))
        if dl is None:
            delta = torch.ones(x.shape[0], x.shape[2], dtype=x.dtype, device=x.device)
        else:
            delta = dl[..., 0] if self.delta_kind == "scalar" else dl.transpose(1, 2)
        return {"u": u.transpose(1, 2), "delta": delta, "A": self.A, "B": B.transpose(1, 2),
                "C": C.transpose(1, 2), "delta_mode": "scalar" if self.delta_kind == "none" else self.delta_kind,
                "input_delta": self.input_delta}

    def forward(self, x: torch.Tensor, backend: str = "auto") -> torch.Tensor:
        """y (batch, D, L) for x (batch, d_in, L), through :func:`kernels.selective_scan`."""
        p = self.ssm_params(x)
        return selective_scan(p["u"], p["delta"], p["A"], p["B"], p["C"], delta_mode=p["delta_mode"],
                              input_delta=p["input_delta"], backend=backend)

    __call__ = forward

    def delta_grid(self, x: torch.Tensor) -> torch.Tensor:
        """Δ_t broadcast to every state, (L, D, N), for one sequence x (L, d_in)."""
        L = x.shape[0]
        shape = (L, self.channels, self.states)
        if self.delta_kind == "none":
            return torch.ones(shape, dtype=x.dtype, device=x.device)
        dl = _softplus(_affine(x, self.W_delta, self.b_delta))                       # (L, K)
        return (dl[:, None, :] if self.delta_kind == "state" else dl[:, :, None]).expand(shape)


def token_ssm(layer) -> TokenSSM:
    """The :class:`TokenSSM` that a mixer of :mod:`ssm.layers` computes, read from its weights (float64).

    S4D (eq. 6): Δ ≡ 1, constant B, C. S6 (eq. 7/14): Δ per channel from ``dt_proj``, B, C from ``B_proj``,
    ``C_proj``, u = x. Mamba-Δ⊤ (eq. 15): Δ per state, input term without Δ. Mamba-2 (eq. 14 right): scalar Δ from
    ``dt_proj``; u, B, C = σ(conv(Linear(x))), which is token-wise (the setting of Lemma 1) only with kernel size 1,
    where the convolution is the scale ``weight[:, 0]`` and shift ``bias`` folded into W and b. Raises ValueError
    for anything else (Mamba-2 with a longer kernel mixes neighbouring tokens).
    """
    if isinstance(layer, TokenSSM):
        return layer.to(dtype=torch.float64)

    def t(p):
        return None if p is None else p.detach().cpu().to(torch.complex128 if p.is_complex() else torch.float64)

    if isinstance(layer, S4DMixer):
        ssm = TokenSSM(A=t(layer.A), delta_kind="none", b_B=t(layer.B), b_C=t(layer.C))
    elif isinstance(layer, (S6Mixer, MambaDeltaTMixer)):
        ssm = TokenSSM(A=t(layer.A), delta_kind="channel" if isinstance(layer, S6Mixer) else "state",
                       W_delta=t(layer.dt_proj.weight), b_delta=t(layer.dt_proj.bias),
                       W_B=t(layer.B_proj.weight), b_B=t(layer.B_proj.bias),
                       W_C=t(layer.C_proj.weight), b_C=t(layer.C_proj.bias),
                       input_delta=isinstance(layer, S6Mixer))
    elif isinstance(layer, Mamba2Mixer):
        convs = (layer.conv_u, layer.conv_B, layer.conv_C)
        if any(c.kernel_size != 1 for c in convs):
            raise ValueError(f"Lemma 1's closed form needs token-wise parameters: the Mamba-2 mixer's convolutions "
                             f"have kernel size {layer.conv_u.kernel_size}, not 1")
        folded = []
        for conv, proj in zip(convs, (layer.u_proj, layer.B_proj, layer.C_proj)):
            w = t(conv.weight)[:, 0]
            folded += [w[:, None] * t(proj.weight), w * t(proj.bias) + t(conv.bias), conv.activation_name]
        (W_u, b_u, a_u), (W_B, b_B, a_B), (W_C, b_C, a_C) = folded[:3], folded[3:6], folded[6:]
        ssm = TokenSSM(A=t(layer.A).expand(layer.d, layer.N).clone(), delta_kind="scalar",
                       W_delta=t(layer.dt_proj.weight), b_delta=t(layer.dt_proj.bias),
                       W_u=W_u, b_u=b_u, act_u=a_u, W_B=W_B, b_B=b_B, act_B=a_B, W_C=W_C, b_C=b_C, act_C=a_C)
    else:
        raise ValueError(f"no closed form for a layer of type {type(layer).__name__}")
    return ssm.to(dtype=torch.float64)


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
                         f"more than {MAX_JACOBIAN_ENTRIES}: use a shorter --length or a smaller --d/--n")


# ---------------------------------------------------------------------------------------------------------------
# Jacobians: autograd through the scan, and the closed form of App. B
# ---------------------------------------------------------------------------------------------------------------

def jacobian_autograd(layer, x: torch.Tensor, *, target: str = "state", backend: str = "auto",
                      rows_per_pass: int = 2048) -> torch.Tensor:
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
    the picked outputs gives every copy's gradient, one row of J each.
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
    for lo in range(0, n_rows, rows_per_pass):
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
        du = _act_grad(ssm.act_u, z_u)[:, :, None] * ssm.W_u[None]                 # (L, D, d_in)
    zero = torch.zeros(L, nstate, d_in, dtype=x.dtype, device=x.device)
    dB = zero if ssm.W_B is None else _act_grad(ssm.act_B, z_B)[:, :, None] * ssm.W_B[None]
    dC = zero if ssm.W_C is None else _act_grad(ssm.act_C, z_C)[:, :, None] * ssm.W_C[None]
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


# ---------------------------------------------------------------------------------------------------------------
# Lemma 1: decay rates
# ---------------------------------------------------------------------------------------------------------------

def random_input(length: int, d_in: int, seed: int, device=None) -> torch.Tensor:
    """x (length, d_in) with i.i.d. N(0, 1) entries, float64, from ``seed``."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    g = torch.Generator().manual_seed(seed)
    return torch.randn(length, d_in, generator=g, dtype=torch.float64).to(device)


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


def _check_j(j: int, L: int, name: str = "j"):
    if isinstance(j, bool) or not isinstance(j, int) or not 1 <= j <= L:
        raise ValueError(f"{name} must be an integer in [1, T={L}], got {j!r}")


def decay_experiment(layer, x: torch.Tensor, *, j: int = 1, backend: str = "auto", curves: int = 4) -> dict:
    """Lemma 1 on one layer and one input: autograd vs closed form, and decay rates fitted against t − j.

    Parameters
    ----------
    layer : a mixer of :mod:`ssm.layers` or a :class:`TokenSSM`; x : (L, d_in); j : the input position (1-based).

    For every state (d, n) the sensitivity s_t = ‖∂h_t[d, n]/∂x_j‖ (norm over the input's coordinates) is fitted
    as log s_t = a − r (t − j) for t > j; Lemma 1 (eq. 37) predicts r = λ·mean_{r>j} Δ_r (λ = −Re A; Δ ≡ 1 for
    S4D, so r = λ). Fitting log s_t against the Δ-time Σ_{r=j+1}^t Δ_r instead recovers λ itself.

    Returns ``{"metrics", "components", "plot"}``: metrics hold the maximal relative errors of autograd vs closed
    form for the state and the output (:func:`max_relative_error`) and the largest relative deviations of the
    fitted rates from theory; components list every state's λ, mean Δ, theory and fitted rates; plot holds arrays
    for :mod:`approx.plots_sensitivity`.
    """
    L = x.shape[0]
    _check_j(j, L)
    ssm = token_ssm(layer)
    x = x.to(torch.float64)
    J = jacobian_autograd(layer, x, target="state", backend=backend)
    Jc = jacobian_closed_form(ssm, x, target="state")
    Jy = jacobian_autograd(layer, x, target="output", backend=backend)
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
    heat = torch.linalg.vector_norm(J.reshape(L, L, -1), dim=-1).cpu().numpy()
    plot = {
        "heat": heat, "heat_label": "‖∂h_t/∂x_j‖",
        "curves": [{"label": f"d={c['d']}, n={c['n']}", "x": steps[j0:], "y": s[j0:, c["d"], c["n"]],
                    "theory": c["G"] * np.exp(-c["rate_theory"] * steps[j0:])} for c in picks],
        "curve_xlabel": "t − j", "curve_ylabel": f"‖∂h_t/∂x_j‖, j = {j}",
        "hist": {"exp(−λΔ_t)": np.exp(-(lam[None] * dl)).ravel()},
    }
    return {"metrics": metrics, "components": comps, "plot": plot}


# ---------------------------------------------------------------------------------------------------------------
# Lemma 2 and the selective forgetting of Fig. 1
# ---------------------------------------------------------------------------------------------------------------

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
                      backend: str = "auto", device=None) -> dict:
    """Lemma 2 (eqs. 12-13): with Δ pushed toward 0 after j the sensitivity to x_j stays above e^{−c}·|…|.

    The layer is :func:`gated_layer` on :func:`gated_input` with the marker on up to j, so Δ_t = Δ_on for t ≤ j
    and Δ_off after. Over the horizon T = ``length``, eq. (12) holds with c = λ Σ_{r=1}^{T} Δ_r and eq. (13) reads

        |∂h_t/∂ξ_j| ≥ e^{−c} |∂(B(x_j) Δ(x_j) ξ_j)/∂ξ_j|      for every t = j..T,

    checked on the autograd sensitivities (which are also checked against the closed form). The S4D of eq. 6 with
    the same λ (Δ ≡ 1) is the contrast: its retention e^{−λ(t−j)} leaves the bound once λ(t − j) > c.
    """
    _check_j(j, length)
    layer = gated_layer(kind, lam=lam, delta_on=delta_on, delta_off=delta_off)
    x = gated_input(length, j, seed).to(device)
    ssm = token_ssm(layer).to(x.device)
    J = jacobian_autograd(layer, x, target="state", backend=backend)
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
    plot = {
        "heat": J[:, :, 0, 0, 0].abs().cpu().numpy(), "heat_label": "|∂h_t[0]/∂ξ_j|",
        "curves": [{"label": f"{kind}, Δ→0 after j", "x": steps, "y": s},
                   {"label": "S4D, same λ", "x": steps, "y": Js,
                    "theory": np.exp(-lam * steps.astype(float))},
                   {"label": "exp(−c)·|∂(BΔx)/∂x_j|, bound (13)", "x": steps, "y": np.full(steps.shape, bound),
                    "style": "bound"}],
        "curve_xlabel": "t − j", "curve_ylabel": f"|∂h_t/∂ξ_j|, j = {j}",
        "hist": {"exp(−λΔ_t), t ≤ j": np.exp(-lam * deltas[:j]), "exp(−λΔ_t), t > j": np.exp(-lam * deltas[j:])},
    }
    return {"metrics": metrics, "plot": plot}


def forgetting_experiment(*, length: int = 64, n: int = 5, vocab: int = 16, seed: int = 0,
                          s4d_lambda: float | None = None, backend: str = "auto", device=None) -> dict:
    """Selective forgetting (Fig. 1, right) on the KEEP n-TH construction of Cor. 2 (:mod:`ssm.constructions.keep_nth`).

    Its S6 layer has Δ large up to step n (e^{−λΔ_t} ≈ 0: earlier tokens are erased) and Δ ≈ 0 after
    (e^{−λΔ_t} ≈ 1: the n-th token is kept). The sensitivities of the last state to every input token,
    ‖∂h_T/∂x_j‖ over the token channels (the position channel excluded), are one spike at j = n. An S4D of eq. (6)
    with one rate λ (default 1/T, slow enough to keep x_n) weighs every token by e^{−λ(T−j)}: indiscriminate.
    """
    from .constructions import keep_nth

    _check_j(n, length, "n")
    model = keep_nth.build(vocab, n, length=length, compressed=True)
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (1, length), generator=g)
    with torch.no_grad():
        x = model.embed(tokens)[0].T.to(device=device, dtype=torch.float64)    # (T, d): [cos, sin, t]
    layer = model.mixer
    ssm = token_ssm(layer).to(x.device)
    J = jacobian_autograd(layer, x, target="state", backend=backend)
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
    j_axis = np.arange(1, length + 1)
    plot = {
        "heat": torch.linalg.vector_norm(J[..., data].reshape(length, length, -1), dim=-1).cpu().numpy(),
        "heat_label": "‖∂h_t/∂x_j‖ (token channels)",
        "curves": [{"label": "S6, KEEP n-TH (Cor. 2)", "x": j_axis, "y": sens},
                   {"label": f"S4D, λ = {lam_s4d:.3g}", "x": j_axis, "y": s4d_sens}],
        "curve_xlabel": "j", "curve_ylabel": "‖∂h_T/∂x_j‖",
        "hist": {"exp(−λΔ_t), t ≤ n": e_decay[:n], "exp(−λΔ_t), t > n": e_decay[n:]},
    }
    return {"metrics": metrics, "plot": plot}


# ---------------------------------------------------------------------------------------------------------------
# Softmax attention (App. B, eqs. 44-45)
# ---------------------------------------------------------------------------------------------------------------

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
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"d must be a positive integer, got {d!r}")
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


def attention_jacobian_autograd(att: Attention, x: torch.Tensor, rows_per_pass: int = 64) -> torch.Tensor:
    """J (L, L, d, d) = ∂y_t[o]/∂x_j[k] by reverse-mode autograd: one batch copy of x per output row (t, o)."""
    x = x.to(torch.float64)
    L, d = x.shape
    J = torch.zeros(L, L, d, d, dtype=torch.float64, device=x.device)
    rows = torch.arange(L * d, device=x.device)
    for lo in range(0, L * d, rows_per_pass):
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


def attention_experiment(*, length: int = 64, d: int = 4, j: int = 1, seed: int = 0, scale: float = 0.3,
                         device=None) -> dict:
    """Softmax attention's sensitivity and its 1/t bound (eq. 45), for comparison with Lemma 1.

    Checks autograd against eq. (44) on every j < t, and the bound

        ‖∂y_t/∂x_j‖ ≤ (C / t) · (min_{r≤t} e^{s_tr})^{−1},   C = max_{j<t} e^{s_tj} ‖W_V + (W_V x_j − y_t)(W_K^T W_Q x_t)^T‖

    (the softmax denominator is at least t·min_r e^{s_tr}; norms are Frobenius; t is 1-based). The decay of
    ‖∂y_t/∂x_j‖ in t is fitted as a power law t^{−p} (the bound's p = 1), against the SSMs' exponential.
    ``scale`` sets the spread of the scores (weights N(0, scale²/d)): the bound holds for any, and the fitted p is
    close to 1 when the attention is spread over the prefix (small scale), noisier when a few scores dominate.
    """
    _check_j(j, length)
    if length < 2:
        raise ValueError(f"attention sensitivities need T >= 2 (j < t), got T={length}")
    att = Attention.random(d, seed, scale)
    x = random_input(length, d, seed + 1)
    J = attention_jacobian_autograd(Attention(*(w.to(device) for w in (att.W_Q, att.W_K, att.W_V))),
                                    x.to(device)).cpu()
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
    plot = {
        "heat": norms.masked_fill(~lower, 0.0).numpy(), "heat_label": "‖∂y_t/∂x_j‖",
        "curves": [{"label": "softmax attention", "x": t_after, "y": curve,
                    "theory": bound_t[j0 + 1:].numpy(), "theory_label": "bound (45)"}],
        "curve_xlabel": "t", "curve_ylabel": f"‖∂y_t/∂x_j‖, j = {j}", "curve_xscale": "log",
        "hist": {"attention weights a_tj": a[strict].numpy()},
    }
    return {"metrics": metrics, "plot": plot}


# ---------------------------------------------------------------------------------------------------------------
# One entry point for the command line
# ---------------------------------------------------------------------------------------------------------------

LAYERS = ("s4d", "s6", "mamba2", "mamba_dt", "attention")
EXPERIMENTS = ("decay", "lemma2", "forgetting")
_ALLOWED = {"decay": LAYERS, "lemma2": ("s6", "mamba2"), "forgetting": ("s6",)}


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def build_layer(layer: str, d: int, n: int, seed: int):
    """A mixer with random weights: the layer's own initialisation under ``torch.manual_seed(seed)``.

    ``s4d``: :class:`ssm.layers.S4DMixer` (complex, S4D-Lin Im Λ = πn) with Re Λ drawn from U(−1, −0.02) so that
    the states decay at different rates; ``s6``: :class:`ssm.layers.S6Mixer`; ``mamba2``:
    :class:`ssm.layers.Mamba2Mixer` with kernel-1 convolutions (token-wise, Lemma 1's setting); ``mamba_dt``:
    :class:`ssm.layers.MambaDeltaTMixer`.
    """
    _positive("d", d)
    _positive("n", n)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if layer == "s4d":
            mixer = S4DMixer(d, n)
            with torch.no_grad():
                mixer.A.real.copy_(-(0.02 + 0.98 * torch.rand(d, n)))
        elif layer == "s6":
            mixer = S6Mixer(d, n)
        elif layer == "mamba2":
            mixer = Mamba2Mixer(d, n, conv_kernel=1)
        elif layer == "mamba_dt":
            mixer = MambaDeltaTMixer(d, n)
        else:
            raise ValueError(f"layer must be one of {LAYERS[:-1]} here, got {layer!r}")
    return mixer


def load_weights(mixer, path) -> None:
    """Load a ``.pt`` state dict into ``mixer`` (in place). Keys prefixed ``mixer.`` (a saved
    :class:`ssm.models.OneLayerModel`) are taken from the model's mixer. Raises ValueError with one line naming the
    file for a missing or unreadable file, or weights whose names or shapes do not fit the layer."""
    import os

    path = str(path)
    if not os.path.exists(path):
        raise ValueError(f"weights file {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"weights file {path!r} is a directory")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling/zip failure means a corrupt file
        raise ValueError(f"weights file {path!r} is not a readable torch state dict ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {path!r} does not hold a state dict of tensors")
    if any(k.startswith("mixer.") for k in state):
        state = {k[len("mixer."):]: v for k, v in state.items() if k.startswith("mixer.")}
    try:
        mixer.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        detail = "; ".join(lines)
        detail = detail if len(detail) <= 240 else detail[:237] + "..."
        raise ValueError(f"weights file {path!r} does not fit a {type(mixer).__name__}(d={mixer.d}, N={mixer.N}): "
                         f"{detail}") from None


def run_sensitivity(*, layer: str = "s6", experiment: str = "decay", length: int = 64, d: int = 2, n: int = 4,
                    j: int | None = None, seed: int = 0, weights=None, device="cpu", backend: str = "auto",
                    scale: float = 0.3) -> dict:
    """Run one sensitivity experiment and return ``{"config", "metrics", "components", "plot"}``.

    - ``decay`` (Lemma 1, any layer): :func:`decay_experiment` on a random (or ``weights``-loaded) mixer and a
      N(0, 1) input of length T, sensitivity to x_j (default j = 1); for ``attention``,
      :func:`attention_experiment` (eqs. 44-45).
    - ``lemma2`` (s6, mamba2): :func:`lemma2_experiment`, j defaults to max(1, T // 4).
    - ``forgetting`` (s6): :func:`forgetting_experiment` on the KEEP n-TH construction, with n = ``j``
      (default min(5, T)).

    ``d``, ``n`` size the random layers (and ``d`` the attention); ``device`` is a torch device (``backend="auto"``
    runs the Triton scan on CUDA). Raises ValueError naming the bad argument.
    """
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    if layer not in _ALLOWED[experiment]:
        raise ValueError(f"experiment {experiment!r} runs on layer {' or '.join(_ALLOWED[experiment])}, "
                         f"got {layer!r}")
    _positive("length", length)
    if weights is not None and (experiment != "decay" or layer == "attention"):
        raise ValueError(f"--weights applies to the decay experiment of an SSM layer, not to "
                         f"{experiment!r} on {layer!r} (its weights are constructed)")
    if j is None:
        j = {"decay": 1, "lemma2": max(1, length // 4), "forgetting": min(5, length)}[experiment]
    _check_j(j, length, "n" if experiment == "forgetting" else "j")
    device = torch.device(device)
    config = {"layer": layer, "experiment": experiment, "length": length, "j": j, "seed": seed,
              "weights": None if weights is None else str(weights), "backend": backend}
    components = []
    if experiment == "decay" and layer == "attention":
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        config.update(d=_positive("d", d), scale=scale)
        result = attention_experiment(length=length, d=d, j=j, seed=seed, scale=scale, device=device)
    elif experiment == "decay":
        mixer = build_layer(layer, d, n, seed)
        if weights is not None:
            load_weights(mixer, weights)
        config.update(d=d, n=n)
        x = random_input(length, d, seed + 1, device)
        result = decay_experiment(mixer, x, j=j, backend=backend)
        components = result["components"]
    elif experiment == "lemma2":
        config.update(lam=1.0, delta_on=0.1, delta_off=1e-4)
        result = lemma2_experiment(layer, length=length, j=j, seed=seed, backend=backend, device=device)
    else:
        config.update(vocab=16, n=j)
        result = forgetting_experiment(length=length, n=j, seed=seed, backend=backend, device=device)
    def finite(v):      # NaN (nothing to fit, e.g. T = 1) → None, so that records stay valid JSON
        return None if isinstance(v, float) and not math.isfinite(v) else v

    metrics = {k: finite(v) for k, v in result["metrics"].items()}
    components = [{k: finite(v) for k, v in c.items()} for c in components]
    return {"config": config, "metrics": metrics, "components": components, "plot": result["plot"]}
