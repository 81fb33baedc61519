"""The mechanistic study's Table 1: Mamba against Transformers on the latest-value MQAR, T ∈ {128, 256, 512},
κ ∈ {1, 4} keys, accuracy (%) at the queries.

The study states no vocabulary, noise length, model sizes, recipe or seeds, nor whether its Mamba row is the
simplified or the full model (its B-10). The lab's choices, recorded in every run: |V| = 16 tokens, n_ε = 3; Mamba is
the 1-layer Mamba block with its convolution (k = 4), no gate, d = 96, N = 16 (9.5k parameters); the Transformers
have d = 32, 4 heads, MLP width d, learned absolute positions unless RoPE, and the convolution (k = 4) where the
row has one (11.6k-18k parameters at T = 128, more with learned positions at larger T); :data:`RECIPE` 20 epochs of 10⁴ sequences at lr 10⁻³ (batch 16), 3 seeds, mean and best
reported. Parameter counts are printed beside the rows ("similar model sizes" is all the study says).
"""
from __future__ import annotations

from signals.tasks import MQARLatestConfig

from ..models import make_model_config
from ..training.recipe import Recipe
from ..training.runs import Run

RECIPE = Recipe(epochs=20, lr=1e-3, train_size=10_000, val_size=500, test_size=2_000)
LENGTHS = (128, 256, 512)
KAPPAS = (1, 4)
VOCAB, NOISE = 16, 3

#: row → (the study's label, model name, fields)
ROWS = {
    "mamba": ("1-layer Mamba, conv", "mamba", {"d": 96, "N": 16, "conv": 4}),
    "tf2": ("2-layer TF, no conv", "transformer", {"d": 32, "heads": 4, "layers": 2}),
    "tf1-conv": ("1-layer TF, conv", "transformer", {"d": 32, "heads": 4, "conv": 4}),
    "tf2-conv-rope": ("2-layer TF, conv, RoPE", "transformer", {"d": 32, "heads": 4, "layers": 2, "conv": 4,
                                                                "position": "rope"}),
}

#: the study's Table 1, accuracy (%) per row at (T, κ)
PAPER = {"mamba": {(128, 1): 100, (128, 4): 100, (256, 1): 100, (256, 4): 99, (512, 1): 100, (512, 4): 99},
         "tf2": {(128, 1): 30, (128, 4): 42, (256, 1): 22, (256, 4): 21, (512, 1): 15, (512, 4): 18},
         "tf1-conv": {(128, 1): 34, (128, 4): 56, (256, 1): 26, (256, 4): 42, (512, 1): 21, (512, 4): 36},
         "tf2-conv-rope": {(128, 1): 100, (128, 4): 100, (256, 1): 100, (256, 4): 96, (512, 1): 77,
                           (512, 4): 90}}


def cells(rows=None, lengths=None, kappas=None) -> list:
    """``[(row, T, κ)]`` asked for (every one by default); unknown rows are a ValueError."""
    rows = list(rows or ROWS)
    for r in rows:
        if r not in ROWS:
            raise ValueError(f"row must be one of {', '.join(ROWS)}, got {r!r}")
    return [(r, T, k) for r in rows for T in (lengths or LENGTHS) for k in (kappas or KAPPAS)]


def runs(chosen, recipe: Recipe = RECIPE, seeds=(0, 1, 2)) -> list:
    """One run per cell and seed, in cell order."""
    out = []
    for row, T, kappa in chosen:
        task = MQARLatestConfig(length=T, n_keys=kappa, vocab=VOCAB, noise=NOISE)
        model = make_model_config(ROWS[row][1], **ROWS[row][2])
        out += [Run(task, model, recipe, s) for s in seeds]
    return out


def summarise(chosen, results, seeds: int) -> list:
    """Per cell: the paper's accuracy and the lab's mean and best over seeds (%), with the parameter count."""
    out = []
    for i, (row, T, kappa) in enumerate(chosen):
        mine = results[i * seeds:(i + 1) * seeds]
        acc = [100 * r["record"]["metrics"]["accuracy"] for r in mine]
        out.append({"row": row, "label": ROWS[row][0], "T": T, "kappa": kappa, "paper": PAPER[row].get((T, kappa)),
                    "mean": sum(acc) / len(acc), "best": max(acc),
                    "parameters": mine[0]["record"]["metrics"]["parameters"]})
    return out
