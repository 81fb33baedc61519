"""Layers of the 1-layer Mamba model of Tab. 2: short causal convolution, gate and the four SSM mixers.

Every tensor that runs along a sequence is laid out channels-first, ``(batch, channels, L)``, as the scan engine
(docs/design.md §2) takes it. Every mixer computes its recurrence with :func:`kernels.selective_scan` (``backend="auto"``:
Triton on CUDA tensors, the PyTorch reference otherwise) with the Δ mode of its equation:

- :class:`S4DMixer`, eq. (6), Tab. 2 left, Δ ≡ 1 (``delta_mode="scalar"``):
  h_t = e^{Λ} ⊙ h_{t−1} + x̂_t ⊗ B;
- :class:`S6Mixer` (Mamba), eq. (7), (14c-g) left, Δ per channel (``"channel"``):
  h_t = e^{Λ ⊙ (Δ_t ⊗ 1_N)} ⊙ h_{t−1} + (Δ_t ⊙ x̂_t) ⊗ B_t;
- :class:`Mamba2Mixer`, eq. (14b-g) right, one scalar Δ_t (``"scalar"``):
  h_t = e^{λ Δ_t} h_{t−1} + (Δ_t x̂_t) ⊗ B_t;
- :class:`MambaDeltaTMixer` (Mamba-Δ⊤), eq. (15), Δ per state, no Δ on the input (``"state"``,
  ``input_delta=False``): h_t = e^{Λ ⊙ (1_d ⊗ Δ_t)} ⊙ h_{t−1} + x̂_t ⊗ B_t;

with h_t ∈ R^{d×N}, h_0 = 0; each reads out y_t = h_t C_t ∈ R^d (the real part when Λ, B, C are complex).
Λ is stored directly as the parameter ``A`` (real part ≤ 0; the constructions of App. C set it to exact values
such as 0 or −1), never through a logarithm, so that ``A = 0`` (Λ = 0, a pure cumulative sum) is representable.

Each mixer exposes ``ssm_params(x)``, the dictionary of scan arguments (``u, delta, A, B, C, delta_mode,
input_delta``) it feeds to the scan for an input ``x``; ``forward(x)`` runs the scan on exactly these.
Other modules (e.g. sensitivity analysis) use ``ssm_params`` to look inside a layer without re-deriving it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kernels import selective_scan
from signals.checks import check_int

ACTIVATIONS = ("silu", "relu", "none")
MIXERS = ("s4d", "mamba", "mamba2", "mamba_dt")


def get_activation(name: str):
    """The pointwise nonlinearity σ named ``name`` (``"silu"``, ``"relu"`` or ``"none"`` for the identity)."""
    if name == "silu":
        return F.silu
    if name == "relu":
        return F.relu
    if name == "none":
        return lambda x: x
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def _linear_seq(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Apply a Linear map position-wise to a channels-first sequence: (batch, d_in, L) → (batch, d_out, L)."""
    return layer(x.transpose(1, 2)).transpose(1, 2)


def _check_input(x: torch.Tensor, channels: int, who: str) -> None:
    if x.dim() != 3 or x.shape[1] != channels:
        raise ValueError(f"{who} input must have shape (batch, {channels}, L), got {tuple(x.shape)}")


class ShortConv(nn.Module):
    """Short causal depthwise convolution with a pointwise nonlinearity (eq. 14b; eq. 54 with kernel size 2).

        x̂_t = σ( Σ_{k=0}^{K−1} weight[:, k] ⊙ x_{t−K+1+k} + bias ),   x_s = 0 for s < 1 (left zero padding),

    so ``weight[:, K−1]`` multiplies the current x_t and ``weight[:, K−2]`` the previous x_{t−1} (the paper's
    c_1 and c_0; its bias −b is ``bias``).

    Parameters
    ----------
    channels : number of channels.
    kernel_size : K ≥ 1.
    activation : σ, ``"silu"`` (Mamba), ``"relu"`` (the constructions of App. C) or ``"none"``.

    Shapes: (batch, channels, L) → (batch, channels, L).
    """

    def __init__(self, channels: int, kernel_size: int = 4, activation: str = "silu"):
        super().__init__()
        self.channels = check_int("channels", channels)
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.activation_name = activation
        self.sigma = get_activation(activation)
        self.weight = nn.Parameter(torch.empty(channels, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.uniform_(self.weight, -1 / math.sqrt(kernel_size), 1 / math.sqrt(kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.channels, "ShortConv")
        padded = F.pad(x, (self.kernel_size - 1, 0))
        z = F.conv1d(padded, self.weight.unsqueeze(1), self.bias, groups=self.channels)
        return self.sigma(z)


class Gate(nn.Module):
    """Multiplicative gate of eq. (14g): ỹ_t = σ(W_g x_t + b_g) ⊙ y_t, with x_t the block's input (the embedding).

    Shapes: ``forward(x, y)`` with x, y: (batch, d, L) → (batch, d, L).
    """

    def __init__(self, d: int, activation: str = "silu"):
        super().__init__()
        self.d = check_int("d", d)
        self.activation_name = activation
        self.sigma = get_activation(activation)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.d, "Gate")
        return self.sigma(_linear_seq(self.proj, x)) * y


class _Mixer(nn.Module):
    """Shared forward of the mixers: run the scan on the arguments the subclass's ``ssm_params(x)`` builds."""

    d: int
    N: int

    def forward(self, x: torch.Tensor, *, return_last_state: bool = False, backend: str = "auto"):
        """y: (batch, d, L) (and h_L: (batch, d, N) when ``return_last_state``)."""
        p = self.ssm_params(x)
        return selective_scan(p["u"], p["delta"], p["A"], p["B"], p["C"], delta_mode=p["delta_mode"],
                              input_delta=p["input_delta"], return_last_state=return_last_state,
                              backend=backend)


class S4DMixer(_Mixer):
    """S4D mixer (eq. 6 in Tab. 2's Mamba block): time-invariant, Δ ≡ 1, B and C constant.

        h_t = e^{Λ} ⊙ h_{t−1} + x̂_t ⊗ B,   y_t = Re(h_t C),   Λ = ``A`` ∈ C^{d×N} (or R^{d×N}), B, C ∈ C^N (or R^N).

    With ``complex_=True`` (default) ``A`` is initialised S4D-Lin (−½ + iπn); with ``complex_=False`` all
    parameters are real (as in the Thm. 4 construction, Λ = 0 ⇒ e^{Λ} = 1, B = 1).

    Shapes: (batch, d, L) → (batch, d, L).
    """

    def __init__(self, d: int, N: int, complex_: bool = True):
        super().__init__()
        self.d = check_int("d", d)
        self.N = check_int("N", N)
        self.complex_ = complex_
        n = torch.arange(N, dtype=torch.float32)
        if complex_:
            A = torch.complex(-0.5 * torch.ones(d, N), math.pi * n.expand(d, N))
            self.A = nn.Parameter(A)
            self.B = nn.Parameter(torch.ones(N, dtype=torch.complex64))
            self.C = nn.Parameter(torch.randn(N, dtype=torch.complex64) / math.sqrt(N))
        else:
            self.A = nn.Parameter(-(n + 1).expand(d, N).clone() / N)
            self.B = nn.Parameter(torch.ones(N))
            self.C = nn.Parameter(torch.randn(N) / math.sqrt(N))

    def ssm_params(self, x: torch.Tensor) -> dict:
        _check_input(x, self.d, "S4DMixer")
        batch, _, length = x.shape
        return {
            "u": x,
            "delta": torch.ones(batch, length, dtype=x.dtype, device=x.device),
            "A": self.A,
            "B": self.B[None, :, None].expand(batch, self.N, length),
            "C": self.C[None, :, None].expand(batch, self.N, length),
            "delta_mode": "scalar",
            "input_delta": True,
        }


class S6Mixer(_Mixer):
    """Mamba's selective SSM (S6): eq. (7) and Tab. 2 left, (14c)-(14g), Δ per channel.

        Δ_t = SoftPlus(W_Δ x̂_t + b_Δ) ∈ R^d,   B_t = W_B x̂_t + b_B ∈ R^N,   C_t = W_C x̂_t + b_C ∈ R^N,
        h_t = e^{Λ ⊙ (Δ_t ⊗ 1_N)} ⊙ h_{t−1} + (Δ_t ⊙ x̂_t) ⊗ B_t,   y_t = h_t C_t,

    with Λ = ``A`` ∈ R^{d×N}, entries ≤ 0 (scan: ``delta_mode="channel"``, ``input_delta=True``). The projections
    are ``dt_proj`` (d → d), ``B_proj`` and ``C_proj`` (d → N), all with bias.

    Shapes: x̂ (batch, d, L) → y (batch, d, L).
    """

    def __init__(self, d: int, N: int):
        super().__init__()
        self.d = check_int("d", d)
        self.N = check_int("N", N)
        self.A = nn.Parameter(-torch.arange(1, N + 1, dtype=torch.float32).expand(d, N).clone())
        self.dt_proj = nn.Linear(d, d)
        self.B_proj = nn.Linear(d, N)
        self.C_proj = nn.Linear(d, N)

    def ssm_params(self, x: torch.Tensor) -> dict:
        _check_input(x, self.d, "S6Mixer")
        return {
            "u": x,
            "delta": F.softplus(_linear_seq(self.dt_proj, x)),
            "A": self.A,
            "B": _linear_seq(self.B_proj, x),
            "C": _linear_seq(self.C_proj, x),
            "delta_mode": "channel",
            "input_delta": True,
        }


class MambaDeltaTMixer(_Mixer):
    """Mamba-Δ⊤ (eq. 15): Δ varies along the state dimension and the input term carries no Δ.

        Δ_t = SoftPlus(W_Δ x̂_t + b_Δ) ∈ R^N,   B_t = W_B x̂_t + b_B ∈ R^N,   C_t = W_C x̂_t + b_C ∈ R^N,
        h_t = e^{Λ ⊙ (1_d ⊗ Δ_t)} ⊙ h_{t−1} + x̂_t ⊗ B_t,   y_t = h_t C_t,

    with Λ = ``A`` ∈ R^{d×N}, entries ≤ 0 (scan: ``delta_mode="state"``, ``input_delta=False``). The projections
    are ``dt_proj``, ``B_proj`` and ``C_proj`` (d → N), all with bias.

    Shapes: x̂ (batch, d, L) → y (batch, d, L).
    """

    def __init__(self, d: int, N: int):
        super().__init__()
        self.d = check_int("d", d)
        self.N = check_int("N", N)
        self.A = nn.Parameter(-torch.ones(d, N))
        self.dt_proj = nn.Linear(d, N)
        self.B_proj = nn.Linear(d, N)
        self.C_proj = nn.Linear(d, N)

    def ssm_params(self, x: torch.Tensor) -> dict:
        _check_input(x, self.d, "MambaDeltaTMixer")
        return {
            "u": x,
            "delta": F.softplus(_linear_seq(self.dt_proj, x)),
            "A": self.A,
            "B": _linear_seq(self.B_proj, x),
            "C": _linear_seq(self.C_proj, x),
            "delta_mode": "state",
            "input_delta": False,
        }


class Mamba2Mixer(_Mixer):
    """Single-head Mamba-2 mixer (Tab. 2 right, eq. 14b-14g): scalar Λ = λ, scalar Δ_t, three independent convolutions.

        x̂_t = σ(conv_u(W_u x)[t]) ∈ R^d,  B_t = σ(conv_B(W_B x)[t]) ∈ R^N,  C_t = σ(conv_C(W_C x)[t]) ∈ R^N,
        Δ_t = SoftPlus(w_Δ·x_t + b_Δ) ∈ R   (from the raw input x_t, eq. 14c right),
        h_t = e^{λ Δ_t} h_{t−1} + (Δ_t x̂_t) ⊗ B_t,   y_t = h_t C_t,

    with λ = ``A`` a real scalar ≤ 0 (scan: ``delta_mode="scalar"``, ``input_delta=True``). Unlike the other mixers
    it takes the block input x (the embedding), not a convolved x̂: its convolutions ``conv_u``, ``conv_B``,
    ``conv_C`` (:class:`ShortConv`, kernel ``conv_kernel``, nonlinearity ``conv_activation``) live inside it. The
    linear maps are ``u_proj`` (d → d), ``B_proj``, ``C_proj`` (d → N) and ``dt_proj`` (d → 1), all with bias.

    Shapes: x (batch, d, L) → y (batch, d, L).
    """

    def __init__(self, d: int, N: int, conv_kernel: int = 4, conv_activation: str = "silu"):
        super().__init__()
        self.d = check_int("d", d)
        self.N = check_int("N", N)
        self.A = nn.Parameter(torch.tensor(-1.0))
        self.u_proj = nn.Linear(d, d)
        self.B_proj = nn.Linear(d, N)
        self.C_proj = nn.Linear(d, N)
        self.dt_proj = nn.Linear(d, 1)
        self.conv_u = ShortConv(d, conv_kernel, conv_activation)
        self.conv_B = ShortConv(N, conv_kernel, conv_activation)
        self.conv_C = ShortConv(N, conv_kernel, conv_activation)

    def ssm_params(self, x: torch.Tensor) -> dict:
        _check_input(x, self.d, "Mamba2Mixer")
        return {
            "u": self.conv_u(_linear_seq(self.u_proj, x)),
            "delta": F.softplus(_linear_seq(self.dt_proj, x))[:, 0, :],
            "A": self.A.expand(self.d, self.N),
            "B": self.conv_B(_linear_seq(self.B_proj, x)),
            "C": self.conv_C(_linear_seq(self.C_proj, x)),
            "delta_mode": "scalar",
            "input_delta": True,
        }


def make_mixer(kind: str, d: int, N: int, *, conv_kernel: int = 4, conv_activation: str = "silu",
               s4d_complex: bool = True) -> _Mixer:
    """The mixer named ``kind`` (one of :data:`MIXERS`): ``"s4d"``, ``"mamba"`` (S6), ``"mamba2"``, ``"mamba_dt"``
    (Mamba-Δ⊤). ``conv_kernel``/``conv_activation`` configure Mamba-2's own three convolutions only."""
    if kind == "s4d":
        return S4DMixer(d, N, complex_=s4d_complex)
    if kind == "mamba":
        return S6Mixer(d, N)
    if kind == "mamba2":
        return Mamba2Mixer(d, N, conv_kernel=conv_kernel, conv_activation=conv_activation)
    if kind == "mamba_dt":
        return MambaDeltaTMixer(d, N)
    raise ValueError(f"mixer must be one of {MIXERS}, got {kind!r}")
