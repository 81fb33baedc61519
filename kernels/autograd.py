"""``torch.autograd.Function`` over the scan kernels: the Gluon kernels (:mod:`kernels.gluon_scan`) for real float32
scans on CUDA, the Triton kernels (:mod:`kernels.triton_scan`) for the rest and under ``TRITON_INTERPRET=1``."""
from __future__ import annotations

import torch

from . import gluon_scan, triton_scan

#: which kernels a scan may take: "auto" (Gluon where it applies, else Triton), "gluon" (refused where it does not
#: apply), "triton"
KERNELS = ("auto", "gluon", "triton")


def _forward(kernels, u, delta, A, B, C, D, **options):
    """(y, h_L, ckpt, module) from the first kernels of the choice that take the scan."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    if kernels != "triton" and gluon_scan.supported(u, delta, A, B, C, D):
        out = gluon_scan.scan_fwd(u, delta, A, B, C, D, **options)
        if out is not None:
            return (*out, gluon_scan)
    if kernels == "gluon":
        raise ValueError("the Gluon kernels take real float32 CUDA scans whose channel blocks fit the groups of "
                         "B and C; this scan is not one")
    return (*triton_scan.scan_fwd(u, delta, A, B, C, D, **options), triton_scan)


class SelectiveScanFn(torch.autograd.Function):
    """y = selective_scan(u, Δ, A, B, C, D) with gradients for u, Δ, A, B, C, D (and through h_L if returned).

    The forward saves only its inputs and the chunk-start states (batch, L/T, D, N); the backward (of the same
    kernels as the forward) recomputes the rest."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_mode, input_delta, delta_softplus, return_last_state, kernels):
        needs_grad = any(ctx.needs_input_grad[:6])
        options = dict(delta_mode=delta_mode, input_delta=input_delta, delta_softplus=delta_softplus)
        y, h_last, ckpt, impl = _forward(kernels, u, delta, A, B, C, D, return_last_state=return_last_state,
                                         save_ckpt=needs_grad, **options)
        if needs_grad:
            ck_r, ck_i, chunk = ckpt
            ctx.save_for_backward(u, delta, A, B, C, D, ck_r, ck_i)
            ctx.chunk = chunk
            ctx.impl = impl
            ctx.options = options
        if return_last_state:
            return y, h_last
        return y

    @staticmethod
    def backward(ctx, dy, dh_last=None):
        u, delta, A, B, C, D, ck_r, ck_i = ctx.saved_tensors
        du, ddelta, dA, dB, dC, dD = ctx.impl.scan_bwd(
            u, delta, A, B, C, D, dy, dh_last, (ck_r, ck_i, ctx.chunk), **ctx.options)
        return du, ddelta, dA, dB, dC, dD, None, None, None, None, None


def selective_scan_triton(u, delta, A, B, C, D=None, *, delta_mode="channel", input_delta=True,
                          delta_softplus=False, return_last_state=False, kernels="auto"):
    """The scan of :func:`kernels.reference.selective_scan_ref` on the GPU kernels, differentiable; ``kernels``
    as :data:`KERNELS`."""
    tracked = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (u, delta, A, B, C, D))
    if not tracked:
        y, h_last, _, _ = _forward(kernels, u, delta, A, B, C, D, delta_mode=delta_mode, input_delta=input_delta,
                                   delta_softplus=delta_softplus, return_last_state=return_last_state)
        return (y, h_last) if return_last_state else y
    return SelectiveScanFn.apply(u, delta, A, B, C, D, delta_mode, input_delta, delta_softplus, return_last_state,
                                 kernels)
