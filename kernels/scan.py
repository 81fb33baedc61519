"""Public entry point of the scan engine and the dispatch between its backends (docs/design.md §2)."""
from __future__ import annotations

import functools
import os

from .reference import selective_scan_ref, check_scan_args

BACKENDS = ("auto", "reference", "triton")


@functools.cache
def triton_available() -> bool:
    """Whether the ``triton`` package imports (tried once, on the first scan that could use it)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def selective_scan(u, delta, A, B, C, D=None, *, delta_mode="channel", input_delta=True,
                   delta_softplus=False, return_last_state=False, backend="auto"):
    """Diagonal selective scan h_t = exp(Δ_t·A) h_{t−1} + (Δ_t|1)·u_t·B_t,  y_t = Re Σ_n C_t h_t (+ D u_t).

    Shapes and semantics are those of :func:`kernels.reference.selective_scan_ref`.
    ``backend="auto"`` runs the Triton kernels on CUDA tensors (when triton imports) and the PyTorch reference
    otherwise; ``"reference"`` forces the reference; ``"triton"`` forces the kernels (on CPU tensors only under
    ``TRITON_INTERPRET=1``). Both are differentiable in u, Δ, A, B, C and D.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_scan_args(u, delta, A, B, C, D, delta_mode)
    if backend == "auto":
        backend = "triton" if u.is_cuda and triton_available() else "reference"
    if backend == "triton":
        if not triton_available():
            raise ValueError("backend='triton' needs the triton package, which is not installed")
        devices = {str(t.device) for t in (u, delta, A, B, C, D) if t is not None}
        if len(devices) != 1:
            raise ValueError(f"backend='triton' needs all tensors on one device, got {sorted(devices)}")
        if not u.is_cuda and not _interpreting():
            raise ValueError(f"backend='triton' needs CUDA tensors or TRITON_INTERPRET=1, got device {u.device}")
        from .autograd import selective_scan_triton
        return selective_scan_triton(u, delta, A, B, C, D, delta_mode=delta_mode, input_delta=input_delta,
                                     delta_softplus=delta_softplus, return_last_state=return_last_state)
    return selective_scan_ref(u, delta, A, B, C, D, delta_mode=delta_mode, input_delta=input_delta,
                              delta_softplus=delta_softplus, return_last_state=return_last_state)
