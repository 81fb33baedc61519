"""The scan engine: diagonal (selective) state-space recurrences, a PyTorch reference and GPU kernels (Gluon
for real float32 scans on CUDA, Triton for the rest and under the interpreter).

Knows nothing of models or signals. ``from kernels import selective_scan``.
"""
from .devices import DEVICES, free_memory, resolve_device
from .reference import selective_scan_ref, DELTA_MODES
from .scan import selective_scan, triton_available, BACKENDS
from .time_recovery import recover_time

__all__ = ["selective_scan", "selective_scan_ref", "triton_available", "DELTA_MODES", "BACKENDS", "DEVICES",
           "free_memory", "recover_time", "resolve_device"]
