"""Argument checks shared by every package: one place that says what a valid integer, probability or name is.

Each check returns the normalised value or raises ``ValueError`` naming the argument and the bad value, as a
Python argument (``length``), never as a command-line option: the CLI maps names to its options.

>>> check_int("length", 50)
50
>>> check_int("length", 0)
Traceback (most recent call last):
...
ValueError: length must be an integer ≥ 1, got 0
"""
from __future__ import annotations

import math
import numbers


def check_int(name: str, value, low: int = 1, high: int | None = None) -> int:
    """``value`` as an ``int`` in [low, high] (``high=None``: no upper bound); bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        span = f"≥ {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    return value


def check_float(name: str, value, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` within the stated (optionally open) bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
        span = f" in {lo or '(−∞'}, {hi or '∞)'}" if (low is not None or high is not None) else ""
        raise ValueError(f"{name} must be a finite number{span}, got {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    """``value`` if it is one of ``choices``; otherwise a ValueError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value
