"""Function approximation with SSM bases (Sec. 4.1): basis builders, least-squares fits, their errors and plots.

Flat API: ``from approx import fit`` (:func:`approx.fitting.fit`); basis builders in :mod:`approx.bases`; the fit plot
in :mod:`approx.plots` (imported on demand: it loads matplotlib);
``approx.lstsq`` and ``approx.records`` stay importable as modules.
"""
from . import bases, lstsq, records
from .fitting import BASES, DEFAULT_N, DEFAULT_STRATEGY, STRATEGIES, FitResult, fit, resolve_device

__all__ = ["bases", "lstsq", "records", "BASES", "DEFAULT_N", "DEFAULT_STRATEGY", "STRATEGIES", "FitResult",
           "fit", "resolve_device"]
