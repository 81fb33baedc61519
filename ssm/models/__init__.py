"""Models built from the layers of :mod:`ssm.layers`: the 1-layer model of Tab. 2 that the constructions fill in."""
from .one_layer import OneLayerModel

__all__ = ["OneLayerModel"]
