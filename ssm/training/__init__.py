"""The training stage: an ensemble trainer for the paper's trained models (App. D.1) and the reproductions.

- :mod:`.recipe` — App. D.1's recipe, its knobs and the one-line deviation;
- :mod:`.data` — a group's train/validation/test sets on the device;
- :mod:`.adam`, :mod:`.ensemble`, :mod:`.graph` — stacked Adam, the ensemble step and its CUDA-graph capture;
- :mod:`.runs`, :mod:`.sweep`, :mod:`.distributed` — runs, groups, the store, checkpoints, resume, sharding;
- :mod:`.paper`, :mod:`.reproduce`, :mod:`.fig1` — the paper's tables, the side-by-side comparison, Fig. 1.
- :mod:`.figures` — the MQAR and INDUCTION HEADS figures as sweeps.
"""
from .recipe import PAPER, Recipe, deviation
from .runs import Group, Run, group_runs, run_from_config
from .sweep import run_sweep, summarise, train_groups

__all__ = ["PAPER", "Recipe", "deviation", "Group", "Run", "group_runs", "run_from_config", "run_sweep",
           "summarise", "train_groups"]
