"""The layers of the lab's models: the four SSM mixers with their short convolution and gate, the token-wise
reference twin of the mixers, and the Prop. 1 time layer.

- :mod:`.mixers` — :class:`S4DMixer` (eq. 6), :class:`S6Mixer` (eq. 7), :class:`Mamba2Mixer` (eq. 14 right),
  :class:`MambaDeltaTMixer` (eq. 15), :class:`ShortConv`, :class:`Gate`; every recurrence runs on
  :func:`kernels.selective_scan`;
- :mod:`.token` — :class:`TokenSSM`, the same SSM as explicit per-token functions (the closed forms of
  :mod:`ssm.sensitivity` read it), and :func:`token_ssm`, which reads one from a mixer;
- :mod:`.time` — :class:`TimeRecovery` (Prop. 1).
"""
from .mixers import (ACTIVATIONS, MIXERS, Gate, Mamba2Mixer, MambaDeltaTMixer, S4DMixer, S6Mixer, ShortConv,
                     get_activation, make_mixer)
from .time import TimeRecovery
from .token import TokenSSM, token_ssm

__all__ = ["ACTIVATIONS", "MIXERS", "Gate", "Mamba2Mixer", "MambaDeltaTMixer", "S4DMixer", "S6Mixer", "ShortConv",
           "TimeRecovery", "TokenSSM", "get_activation", "make_mixer", "token_ssm"]
