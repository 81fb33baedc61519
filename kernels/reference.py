"""PyTorch reference of the scan engine (docs/design.md §2): the specification the Triton kernels are tested against.

The recurrence, for every batch element b, channel d, state n and step t = 1..L (h_0 = 0):

    h_t[d, n] = exp(Δ_t[·] · A[d, n]) · h_{t−1}[d, n] + (Δ_t[·] if input_delta else 1) · u_t[d] · B_t[n]
    y_t[d]    = Re Σ_n C_t[n] · h_t[d, n]  (+ D[d] · u_t[d])

This is eq. (2)-(4) of the paper with the ZOH state matrix of eq. (5) and the forward-Euler input matrix used by
Mamba (B_t = B(x_t) Δ_t). Δ_t[·] is indexed by the Δ mode:

- ``"channel"``: Δ_t[d], Mamba/S6 (eq. 14f);
- ``"state"``:   Δ_t[n], Mamba-Δ⊤ (eq. 15; use ``input_delta=False`` for its input term without Δ);
- ``"scalar"``:  one Δ_t per sequence, Mamba-2 (eq. 14f right); S4D (eq. 6) is Δ ≡ 1.

The loop below is written for clarity and float64 exactness, not speed: it is the CPU path of the lab and the
independent reference of every fast path. It keeps only a (batch, D, N) state and never a (batch, L, D, N) tensor.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

DELTA_MODES = ("channel", "state", "scalar")


def check_scan_args(u, delta, A, B, C, D, delta_mode):
    """Validate shapes of the scan's arguments; raise ValueError naming the bad argument.

    B and C are (batch, N, L), shared by every channel, or grouped (batch, G, N, L) with D divisible by G: channel
    d reads group d // (D / G) (as mamba_ssm's ``ngroups``; an ensemble of G models folded into the channels, or
    Mamba-2's heads). With grouped B, C the Δ of the ``"state"`` and ``"scalar"`` modes is grouped too:
    (batch, G, N, L) and (batch, G, L).

    Returns (batch, channels, states, length, groups), groups = 0 for ungrouped B, C.
    """
    if delta_mode not in DELTA_MODES:
        raise ValueError(f"delta_mode must be one of {DELTA_MODES}, got {delta_mode!r}")
    if u.dim() != 3:
        raise ValueError(f"u must have shape (batch, D, L), got {tuple(u.shape)}")
    batch, dim, length = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must have shape (D={dim}, N), got {tuple(A.shape)}")
    nstate = A.shape[1]
    groups = B.shape[1] if B.dim() == 4 else 0
    if groups and dim % groups:
        raise ValueError(f"grouped B has G={groups} groups, which must divide D={dim}")
    bc = (batch, groups, nstate, length) if groups else (batch, nstate, length)
    for name, t in (("B", B), ("C", C)):
        if tuple(t.shape) != bc:
            what = "(batch, G, N, L)" if groups else "(batch, N, L)"
            raise ValueError(f"{name} must have shape {what} = {bc}, got {tuple(t.shape)}")
    g = (groups,) if groups else ()
    want = {"channel": (batch, dim, length), "state": (batch, *g, nstate, length),
            "scalar": (batch, *g, length)}[delta_mode]
    if tuple(delta.shape) != want:
        raise ValueError(f"delta for delta_mode={delta_mode!r} must have shape {want}, got {tuple(delta.shape)}")
    if D is not None and tuple(D.shape) != (dim,):
        raise ValueError(f"D must have shape ({dim},), got {tuple(D.shape)}")
    return batch, dim, nstate, length, groups


def _per_channel(x: torch.Tensor, dim: int, groups: int) -> torch.Tensor:
    """A grouped (batch, G, ...) slice repeated over each group's D / G channels: (batch, D, ...)."""
    return x.repeat_interleave(dim // groups, dim=1) if groups else x[:, None]


def delta_at(delta: torch.Tensor, t: int, delta_mode: str, dim: int = 0, groups: int = 0) -> torch.Tensor:
    """Δ at step t, shaped to broadcast against the (batch, D, N) state."""
    if delta_mode == "channel":
        return delta[:, :, t, None]                                  # (batch, D, 1)
    if delta_mode == "state":
        return _per_channel(delta[..., t], dim, groups)              # (batch, D | 1, N)
    if groups:
        return _per_channel(delta[..., t], dim, groups)[..., None]  # (batch, D, 1)
    return delta[:, t, None, None]                                   # (batch, 1, 1)


def selective_scan_ref(u, delta, A, B, C, D=None, *, delta_mode="channel", input_delta=True,
                       delta_softplus=False, return_last_state=False):
    """Diagonal selective scan, step by step (see the module docstring for the recurrence).

    Parameters
    ----------
    u : (batch, D, L) real tensor, the input.
    delta : (batch, D, L) for ``"channel"``, (batch, N, L) for ``"state"``, (batch, L) for ``"scalar"``; with
        grouped B, C: (batch, G, N, L) for ``"state"`` and (batch, G, L) for ``"scalar"``.
    A : (D, N) real or complex tensor with non-positive real part.
    B, C : (batch, N, L) real or complex tensors, or grouped (batch, G, N, L) with G dividing D.
    D : optional (D,) skip connection.
    delta_softplus : apply softplus to ``delta`` first (Mamba's Δ = SoftPlus(Linear(x)), eq. 7).
    return_last_state : also return h_L, shape (batch, D, N), complex when A, B or C is.

    Returns
    -------
    y : (batch, D, L) in the real dtype of ``u`` (and ``h_L`` if asked).
    """
    _, dim, _, length, groups = check_scan_args(u, delta, A, B, C, D, delta_mode)
    batch = u.shape[0]
    if delta_softplus:
        delta = F.softplus(delta)
    complex_state = A.is_complex() or B.is_complex() or C.is_complex()
    real_dtype = torch.promote_types(u.dtype, delta.dtype)
    state_dtype = torch.promote_types(real_dtype, A.dtype)
    state_dtype = torch.promote_types(state_dtype, torch.promote_types(B.dtype, C.dtype))
    if complex_state and not state_dtype.is_complex:
        state_dtype = torch.complex128 if state_dtype == torch.float64 else torch.complex64
    h = torch.zeros(batch, dim, A.shape[1], dtype=state_dtype, device=u.device)
    ys = []
    for t in range(length):
        dt = delta_at(delta, t, delta_mode, dim, groups)
        decay = torch.exp(dt * A)                                   # (batch, D, N)
        B_t, C_t = _per_channel(B[..., t], dim, groups), _per_channel(C[..., t], dim, groups)
        drive = u[:, :, t, None] * B_t                              # (batch, D, N)
        if input_delta:
            drive = dt * drive
        h = decay * h + drive
        y_t = (C_t * h).sum(-1)
        ys.append(y_t.real if y_t.is_complex() else y_t)
    y = torch.stack(ys, dim=-1).to(real_dtype)
    if D is not None:
        y = y + D[None, :, None] * u
    return (y, h) if return_last_state else y
