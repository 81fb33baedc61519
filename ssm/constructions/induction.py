"""Exact Mamba-Δ⊤ weights that solve INDUCTION HEADS (Lemma 3, App. C.2): d = 2|V|, N = |V|, no gate.

The model: embedding → size-2 causal convolution → Mamba-Δ⊤ mixer (eq. 15) → output layer. Tokens are
0..|V|−1; the output has |V| + 1 classes, the last one the blank × (the token has not occurred before).

Weights, with a = σ(1) the convolution's nonlinearity at 1 (1 for ReLU or none, 0.731 for SiLU; σ(0) = 0):

- embedding (eq. 100): v ↦ [e_v; e_v] ∈ R^{2|V|};
- convolution (eq. 101): c_0 = [1; 0] on x_{t−1}, c_1 = [0; 1] on x_t, no bias, so
  x̂_t = a·[e_{x_{t−1}}; e_{x_t}] (x_0 = 0: x̂_1 = a·[0; e_{x_1}]);
- Mamba-Δ⊤ (eq. 102): Λ = −1; Δ(x̂_t) = SoftPlus(((α + β)/a)·[I | 0] x̂_t − β) ∈ R^N,
  B(x̂_t) = (1/a)[I | 0] x̂_t = e_{x_{t−1}},  C(x̂_t) = (1/a)[0 | I] x̂_t = e_{x_t},  α = 110, β = 40;
- output: W_o = [(1/a)[0 | I]; 0] ∈ R^{(|V|+1)×d} and b_o = [0, …, 0, ½] (the blank's logit is ½).

How it works: at step t column x_{t−1} of the state is erased (Δ = SoftPlus(α) ≈ 110, e^{−110} is 0 in float32)
and overwritten with x̂_t = a·[e_{x_{t−1}}; e_{x_t}]; every other column is kept (Δ = SoftPlus(−β) ≈ 4e−18,
e^{−4e−18·T} = 1). So column k holds the pair (k, next token) of the latest occurrence of k. The read-out
C = e_{x_t} (after the write of step t) returns a·[e_{x_j}; e_{x_{j+1}}] for j = j(t) the latest j < t with
x_j = x_t — also when x_{t−1} = x_t, since the pair written at step t is then (x_t, x_t) and j(t) = t − 1 — or 0
when x_t has not occurred before. The logits are then e_{x_{j(t)+1}} (a 1 against 0's and the blank's ½), or
(0, …, 0, ½): argmax is the target in both cases.

Differences from the proof as printed, and why:

1. Eq. (109) claims Δ(x̂) = SoftPlus(w_Δ [I | 0] x̂) = w_Δ e_j, but SoftPlus(0) = log 2: every column that is not
   the current key decays by e^{−log 2} = ½ per step, so a memory written k steps earlier is read as 2^{−k}.
   In float32 it underflows to 0 after ~149 steps (the hard setting at T ≳ 300 loses its special token), and no
   fixed threshold tells a faded memory from "no occurrence". Fix: a bias −β on the Δ projection (SoftPlus(−β)
   ≈ 0 off the key) with the key weight raised to α + β.
2. The printed output layer W_o = [0 | I] has no row for the blank ×: at a first occurrence y_t = 0 and all
   logits tie. Fix: one more class with constant logit ½ (bias only), between the 0 and the 1 of the others.
3. w_Δ → ∞ is saturated at α = 110 (e^{−110} ≈ 1.7e−48, below float32's smallest subnormal), β = 40; no value
   exceeds 150, so the weights are exact in float32 on a GPU as well.

The special token at the ends of a hard-setting sequence (positions r and T − r, r ≥ 1) needs no change: position
1 writes nothing (x̂_1 has no key half), and the pair (v*, x_{r+1}) written at step r + 1 is kept unchanged until
the query at T − r.
"""
from __future__ import annotations

import torch

from signals.checks import check_int

from ..layers import get_activation
from ..models import OneLayerModel

ALPHA = 110.0     # erase: Δ = SoftPlus(α) on the key column
BETA = 40.0       # keep: Δ = SoftPlus(−β) elsewhere
BLANK_LOGIT = 0.5


def paper_bound(vocab: int) -> dict:
    """Sizes of Lemma 3: d = 2|V|, N = |V|."""
    return {"d": 2 * vocab, "N": vocab, "source": "Lemma 3 (App. C.2): d = 2|V|, N = |V|"}


def required_sizes(vocab: int) -> dict:
    """Smallest d, N this construction needs (those of Lemma 3)."""
    return {"d": 2 * vocab, "N": vocab}


def build(vocab: int = 20, *, activation: str = "relu", d: int | None = None, N: int | None = None) -> OneLayerModel:
    """The INDUCTION HEADS model of Lemma 3 with the fixes of the module docstring.

    Parameters
    ----------
    vocab : |V| ≥ 2; inputs in [0, |V|), outputs in [0, |V|] (|V| = blank).
    activation : the convolution's σ, ``"relu"`` (default), ``"silu"`` (Mamba's) or ``"none"``.
    d, N : sizes ≥ 2|V| and ≥ |V| (default equal); extra channels and states are inert.

    The weights do not depend on the sequence length. Raises ValueError for vocab < 2 or d, N below Lemma 3's.
    """
    check_int("vocab", vocab, 2)
    need = required_sizes(vocab)
    d = need["d"] if d is None else d
    N = need["N"] if N is None else N
    if d < need["d"]:
        raise ValueError(f"d={d} is below Lemma 3's d = 2|V| = {need['d']} for vocab {vocab}")
    if N < need["N"]:
        raise ValueError(f"N={N} is below Lemma 3's N = |V| = {need['N']} for vocab {vocab}")
    a = float(get_activation(activation)(torch.tensor(1.0, dtype=torch.float64)))
    V = vocab
    model = OneLayerModel(V, d, N, num_classes=V + 1, mixer="mamba_dt", conv_kernel=2, conv_activation=activation,
                          gate=False)
    eye = torch.eye(V)
    mix = model.mixer
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embedding.weight[:, :V] = eye                     # v ↦ [e_v; e_v]      (eq. 100)
        model.embedding.weight[:, V:2 * V] = eye
        model.conv.weight[:V, 0] = 1.0                          # c_0 = [1; 0] on x_{t−1}  (eq. 101)
        model.conv.weight[V:2 * V, 1] = 1.0                     # c_1 = [0; 1] on x_t
        mix.A.fill_(-1.0)                                       # Λ = −1
        mix.dt_proj.weight[:V, :V] = (ALPHA + BETA) / a * eye   # Δ = SoftPlus(((α+β)/a)[I|0]x̂ − β)  (eq. 102a)
        mix.dt_proj.bias.fill_(-BETA)
        mix.B_proj.weight[:V, :V] = eye / a                     # B = [I|0]x̂ / a      (eq. 102c)
        mix.C_proj.weight[:V, V:2 * V] = eye / a                # C = [0|I]x̂ / a      (eq. 102d)
        model.out.weight[:V, V:2 * V] = eye / a                 # W_o = [0|I] / a
        model.out.bias[V] = BLANK_LOGIT                         # the blank ×
    return model
