"""Fig. 1: the distribution of the multipliers e^{−λΔ_t} of trained models on test inputs, per T and per timestep.

For Mamba, e^{−λΔ_t} = e^{Λ Δ_t} ∈ (0, 1) for every channel c and state n at step t (eq. 14f); the paper reads
it "mostly 0 before timestep n" (the state is erased) and "mostly 1 from timestep n onwards" (x_n is kept), and
shifting towards 1 as T grows (Lem. 2). For S4D, Δ ≡ 1 and e^{Λ} is the same at every step: the distribution
is over its d×N entries only ("forced to memorize indiscriminately").

The models are the Table 1 setup (d = 32, N = 8, with PE) at the lengths T asked for, read from the runs'
stored weights (:func:`ssm.training.sweep.run_sweep` trains those not yet in the store). The values are pooled
over seeds, test sequences, channels and states.
"""
from __future__ import annotations

import numpy as np
import torch

from signals.tasks import KeepNthConfig
from ..models import MambaConfig, S4DConfig
from .runs import Run, trained_model

MODELS = {"mamba": MambaConfig, "s4d": S4DConfig}
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def fig1_runs(recipe, lengths, seeds, *, d: int = 32, N: int = 8, nth: int = 5) -> list:
    """Mamba+PE and S4D+PE runs at every T in ``lengths`` and seed in ``seeds`` (model-major order)."""
    return [Run(KeepNthConfig(length=T, nth=nth, vocab=128), MODELS[m](d=d, N=N, pe=True), recipe, s)
            for m in MODELS for T in lengths for s in seeds]


@torch.no_grad()
def multipliers(run: Run, arrays: dict, samples: int) -> np.ndarray:
    """e^{−λΔ_t} of the stored model of ``run`` on ``samples`` test sequences: (samples, T, d·N) float64."""
    task = run.task
    model, params = trained_model(run, arrays)
    tokens = task.generate(samples, run.recipe.data_seeds()["test"]).inputs[None]
    decay = model.decays(params, tokens, model.buffers([task.length], dtype=torch.float64))
    return decay[0].reshape(samples, task.length, -1).numpy()


def summarise(runs, results, *, samples: int = 200) -> dict:
    """Per model and T: quantiles of the pooled multipliers, the fraction ≤ 0.1 before n and ≥ 0.9 from n on, and
    per timestep t the 10/50/90% quantiles. Returns ``{"models": {name: {T: {...}}}, "nth"}``."""
    pooled = {}
    for run, res in zip(runs, results):
        values = multipliers(run, res["arrays"], samples)
        pooled.setdefault(run.model.name, {}).setdefault(run.task.length, []).append(values)
    nth = runs[0].task.nth
    out = {}
    for name, by_T in pooled.items():
        out[name] = {}
        for T, parts in sorted(by_T.items()):
            v = np.concatenate(parts, axis=0)                                  # (seeds·samples, T, d·N)
            before, after = v[:, :nth - 1].ravel(), v[:, nth - 1:].ravel()
            per_t = np.quantile(v.transpose(1, 0, 2).reshape(T, -1), (0.1, 0.5, 0.9), axis=1)
            out[name][T] = {"quantiles": dict(zip(QUANTILES, np.quantile(v, QUANTILES).tolist())),
                            "mean": float(v.mean()),
                            "zero_before_n": float((before <= 0.1).mean()) if before.size else float("nan"),
                            "one_from_n": float((after >= 0.9).mean()),
                            "per_t": {"q10": per_t[0].tolist(), "q50": per_t[1].tolist(), "q90": per_t[2].tolist()}}
    return {"models": out, "nth": nth}
