"""The basis families of the lab, one module each; every module registers its strategies in
:mod:`approx.registry` when imported (the registry imports every module of this package on first use: those of
:data:`FIRST` in that order, so tables and help list them so, then any other in alphabetical order).

- :mod:`approx.families.s4d` — S4D bases (eq. 9) through the scan: ``fourier``, ``s4d-lin``, ``best``, ``learned``;
- :mod:`approx.families.mamba` — Mamba bases (eq. 8) through the scan: ``haar`` (Thm. 1), ``heaviside``
  (eqs. 20-22), ``learned``;
- :mod:`approx.families.ideal` — the ideal dictionaries they approximate: Haar ``best``/``linear`` (PyWavelets)
  and Fourier ``partial``/``best`` (FFT).
"""

FIRST = ("s4d", "mamba", "ideal")
