"""Signals and task data on the grid of docs/design.md §1: the grid geometry, seeded test signals, a user's own file."""
from . import grid
from .grid import check_length, inner, midpoints, norm_sq, time_channel
from .files import load_signal
from .library import SIGNALS, generate, haar, needle, piecewise, piecewise_params, step

__all__ = ["grid", "check_length", "inner", "midpoints", "norm_sq", "time_channel", "load_signal", "SIGNALS",
           "generate", "haar", "needle", "piecewise", "piecewise_params", "step"]
