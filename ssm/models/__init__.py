"""Models: the 1-layer model of Tab. 2 that the constructions fill in, and the trainable model zoo.

- :class:`OneLayerModel` — built from :mod:`ssm.layers`, one model at a time (the constructions).
- :data:`MODELS` — the stacked (ensemble) models the trainer runs (:mod:`ssm.models.registry`): ``mamba``,
  ``s4d``, ``transformer`` (KEEP n-TH), ``mamba2``, ``mamba-s4d`` (MQAR) and ``mamba-dt`` (INDUCTION HEADS).
"""
from .one_layer import OneLayerModel
from .registry import (MODELS, RECALL_CONV, Mamba2Config, MambaConfig, MambaDTConfig, MambaS4DConfig, S4DConfig,
                       TransformerConfig, build, make_model_config, model_from_dict, task_defaults)
from .stacked import StackedModel, member, stack

__all__ = ["OneLayerModel", "MODELS", "Mamba2Config", "MambaConfig", "MambaDTConfig", "MambaS4DConfig", "S4DConfig",
           "RECALL_CONV", "TransformerConfig", "StackedModel", "build", "make_model_config", "member",
           "model_from_dict", "stack", "task_defaults"]
