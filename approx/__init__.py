"""Function approximation with SSM bases (Sec. 4.1): basis builders, the table of (basis, strategy), least-squares
fits, rate sweeps, their errors and plots.

Flat API: ``from approx import fit, rate_sweep``; the strategies in :mod:`approx.registry` (builders in
:mod:`approx.families`, basis functions in :mod:`approx.bases`); plots in :mod:`approx.plots` and the modules
beside it (imported on demand: they load matplotlib); ``approx.lstsq``, ``approx.records`` and ``approx.store``
stay importable as modules.
"""
from . import bases, lstsq, records, registry
from .fitting import DEFAULT_N, FitResult, fit
from .rates import DEFAULT_M, RateSweep, rate_sweep

__all__ = ["bases", "lstsq", "records", "registry", "DEFAULT_N", "FitResult", "fit", "DEFAULT_M", "RateSweep",
           "rate_sweep"]
