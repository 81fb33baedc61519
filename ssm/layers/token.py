"""The token-wise SSM: the reference twin of the mixers, whose parameters are explicit functions of each token.

:class:`TokenSSM` holds a diagonal SSM as plain tensors (eqs. 6, 7, 14, 15 with no convolution across tokens, the
setting of Lemma 1); :func:`token_ssm` reads one from a mixer of :mod:`ssm.layers.mixers`. Its ``ssm_params`` are
the mixer's scan arguments computed from the weights alone, and its closed-form ingredients (Δ, B, C and their
derivatives per token) are what :mod:`ssm.sensitivity` needs for App. B's Jacobian.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from kernels import selective_scan

from .mixers import Mamba2Mixer, MambaDeltaTMixer, S4DMixer, S6Mixer

DELTA_KINDS = ("none", "channel", "state", "scalar")
ACTS = ("none", "silu", "relu")


def _softplus(z: torch.Tensor) -> torch.Tensor:
    """softplus(z) = log(1 + e^z), exact for every z (torch's F.softplus switches to z above 20)."""
    return torch.logaddexp(z, torch.zeros((), dtype=z.dtype, device=z.device))


def _act(name: str, z: torch.Tensor) -> torch.Tensor:
    return F.silu(z) if name == "silu" else F.relu(z) if name == "relu" else z


def activation_grad(name: str, z: torch.Tensor) -> torch.Tensor:
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
        h_t = exp(Δ_t A) ⊙ h_{t−1} + (Δ_t if input_delta else 1) · u_t ⊗ B_t        (docs/design.md §2, eq. 36)
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
