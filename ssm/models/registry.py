"""The model zoo: one entry per trainable architecture, its config dataclass and its stacked implementation.

Adding a model (Mamba-2, Mamba-S4D, Mamba-Δ⊤, a Transformer with RoPE, …) is one config dataclass, one
:class:`ssm.models.stacked.StackedModel` subclass and one entry in :data:`MODELS`; the trainer, the store and the
command line read the registry.
"""
from __future__ import annotations

from signals.tasks.registry import make_config

from .mamba import MambaConfig, MambaDTConfig, StackedMamba, StackedMambaDT
from .mamba2 import Mamba2Config, StackedMamba2
from .s4d import MambaS4DConfig, S4DConfig, StackedMambaS4D, StackedS4D
from .simple import SimpleMambaConfig, StackedSimpleMamba
from .transformer import StackedTransformer, TransformerConfig

MODELS = {cls.config_class.name: cls for cls in (StackedMamba, StackedS4D, StackedTransformer, StackedMamba2,
                                                  StackedMambaS4D, StackedMambaDT, StackedSimpleMamba)}


#: the convolution's kernel on the recall tasks (App. D.3-D.4 use the block's convolution without saying its size;
#: mamba_ssm's default is 4, the constructions need 2)
RECALL_CONV = 4


def task_defaults(task: str, model: str) -> dict:
    """Model fields that depend on the task: the block's convolution (k = :data:`RECALL_CONV`) for Mamba and
    Mamba-Δ⊤ on ``mqar`` and ``induction`` (Mamba-2 and Mamba-S4D have it by default, KEEP n-TH uses none)."""
    if task in ("mqar", "induction") and model in ("mamba", "mamba-dt"):
        return {"conv": RECALL_CONV}
    return {}


def make_model_config(name: str, **fields):
    """The config of model ``name`` with ``fields`` (None values keep their defaults; a field the model does not
    have is a ValueError naming it)."""
    return make_config({k: v.config_class for k, v in MODELS.items()}, "model", name, fields)


def model_from_dict(d: dict):
    """The config recorded as ``to_dict()``."""
    d = dict(d)
    return make_model_config(d.pop("name"), **d)


def build(config, *, vocab_size: int, num_classes: int, length: int):
    """The stacked model of ``config`` for a task's ``vocab_size``/``num_classes`` and sequences up to ``length``."""
    return MODELS[config.name](config, vocab_size=vocab_size, num_classes=num_classes, length=length)


__all__ = ["MODELS", "RECALL_CONV", "SimpleMambaConfig", "task_defaults", "Mamba2Config", "MambaConfig", "MambaDTConfig", "MambaS4DConfig", "S4DConfig",
           "TransformerConfig", "build", "make_model_config", "model_from_dict"]
