"""SSM layers, the 1-layer model of Tab. 2, the paper's exact constructions and their evaluation.

Flat public API::

    from ssm import OneLayerModel, S6Mixer, MambaDeltaTMixer, Mamba2Mixer, S4DMixer, ShortConv, Gate, TimeRecovery
    from ssm import accuracy
"""
from .layers import (ACTIVATIONS, MIXERS, Gate, Mamba2Mixer, MambaDeltaTMixer, S4DMixer, S6Mixer, ShortConv,
                     TimeRecovery, get_activation, make_mixer)
from .evaluate import accuracy, predict
from .models import OneLayerModel

__all__ = ["ACTIVATIONS", "MIXERS", "Gate", "Mamba2Mixer", "MambaDeltaTMixer", "S4DMixer", "S6Mixer", "ShortConv",
           "get_activation", "make_mixer", "OneLayerModel", "TimeRecovery", "accuracy", "predict"]
