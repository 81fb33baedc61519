"""``torch.autograd.Function`` over the Triton scan kernels (forward and backward of :mod:`kernels.triton_scan`)."""
from __future__ import annotations

import torch

from . import triton_scan


class SelectiveScanFn(torch.autograd.Function):
    """y = selective_scan(u, Δ, A, B, C, D) with gradients for u, Δ, A, B, C, D (and through h_L if returned).

    The forward saves only its inputs and the chunk-start states (batch, L/T, D, N); the backward recomputes the
    rest (see :mod:`kernels.triton_scan`)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_mode, input_delta, delta_softplus, return_last_state):
        needs_grad = any(ctx.needs_input_grad[:6])
        y, h_last, ckpt = triton_scan.scan_fwd(
            u, delta, A, B, C, D, delta_mode=delta_mode, input_delta=input_delta, delta_softplus=delta_softplus,
            return_last_state=return_last_state, save_ckpt=needs_grad)
        if needs_grad:
            ck_r, ck_i, chunk = ckpt
            ctx.save_for_backward(u, delta, A, B, C, D, ck_r, ck_i)
            ctx.chunk = chunk
            ctx.options = dict(delta_mode=delta_mode, input_delta=input_delta, delta_softplus=delta_softplus)
        if return_last_state:
            return y, h_last
        return y

    @staticmethod
    def backward(ctx, dy, dh_last=None):
        u, delta, A, B, C, D, ck_r, ck_i = ctx.saved_tensors
        du, ddelta, dA, dB, dC, dD = triton_scan.scan_bwd(
            u, delta, A, B, C, D, dy, dh_last, (ck_r, ck_i, ctx.chunk), **ctx.options)
        return du, ddelta, dA, dB, dC, dD, None, None, None, None


def selective_scan_triton(u, delta, A, B, C, D=None, *, delta_mode="channel", input_delta=True,
                          delta_softplus=False, return_last_state=False):
    """The scan of :func:`kernels.reference.selective_scan_ref` on the Triton kernels, differentiable."""
    tracked = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (u, delta, A, B, C, D))
    if not tracked:
        y, h_last, _ = triton_scan.scan_fwd(u, delta, A, B, C, D, delta_mode=delta_mode, input_delta=input_delta,
                                            delta_softplus=delta_softplus, return_last_state=return_last_state)
        return (y, h_last) if return_last_state else y
    return SelectiveScanFn.apply(u, delta, A, B, C, D, delta_mode, input_delta, delta_softplus, return_last_state)
