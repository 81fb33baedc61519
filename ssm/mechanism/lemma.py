"""The mechanistic study's Lemma 1: one population-gradient step on W_Δ of the simplified Mamba at W_Δ = 0.

Setting (its Sec. 4 and App. D): |K| = 1 with key 0; a sequence x_0..x_T has x_0 = x_T = 0 (the key, written first
and queried last) and x_1..x_{T−1} i.i.d. uniform on the |V| − 1 other tokens; the target at the query is x_1,
the value written after the key. The model is the simplified Mamba (:mod:`ssm.models.simple`) with the softplus
dropped (Δ_t = W_Δ x̂_t), B = C = 1, N = 1 and a transition of 1 (no forgetting; the study writes "Λ = 1", which
in exp(Λ ⊙ Δ) would amplify: the recurrence it uses, h_t = h_{t−1} + Δ_t ⊙ x̂_t, is the transition 1):

    h_T = Σ_{l=0..T} (W_Δ x̂_l) ⊙ x̂_l,   z = [−I  I] h_T,   ℓ = CE(z, x_1).

:func:`population_gradient` estimates E[∂ℓ/∂W_Δ] by Monte Carlo (autograd over batches of sequences, the spread
over batches as its standard error). At W_Δ = 0 the softmax is uniform, so per sequence
∂ℓ/∂W_Δ[i, j] = g_i Σ_l x̂_l[i] x̂_l[j] with g = (−(p − e_{x_1}), p − e_{x_1}), p = 1/|V|; two entries are the
same for every sequence: W[0, 0] = −1/|V| (the key as predecessor, once) and W[|V|, |V|] = 2/|V| (the key as the
current token, twice). :func:`lemma_values` are the lemma's stated entries, printed beside them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from signals.checks import check_int


def sequences(vocab: int, length: int, samples: int, generator: torch.Generator) -> torch.Tensor:
    """(samples, T + 1) tokens: x_0 = x_T = 0, x_1..x_{T−1} uniform on {1..|V|−1}."""
    x = torch.randint(1, vocab, (samples, length + 1), generator=generator)
    x[:, 0] = 0
    x[:, length] = 0
    return x


def gradient(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over the sequences x (S, T + 1) of ∂ℓ/∂W_Δ at W (2V, 2V), by autograd."""
    vocab = W.shape[0] // 2
    e = F.one_hot(x, vocab).to(W.dtype)
    xhat = torch.cat([F.pad(e, (0, 0, 1, 0))[:, :-1], e], dim=-1)                # [e_{x_{l−1}}; e_{x_l}]
    W = W.detach().requires_grad_(True)
    h = ((xhat @ W.T) * xhat).sum(1)                                                # h_T, transition 1
    loss = F.cross_entropy(h[:, vocab:] - h[:, :vocab], x[:, 1])
    (g,) = torch.autograd.grad(loss, W)
    return g


def population_gradient(vocab: int, length: int, samples: int = 20_000, *, batches: int = 10, seed: int = 0,
                        device=None) -> dict:
    """Monte-Carlo E[∂ℓ/∂W_Δ] at W_Δ = 0 over ``samples`` sequences in ``batches`` equal batches.

    Returns ``{"grad", "se"}`` ((2V, 2V) float64 tensors on the CPU: the mean and its standard error over the
    batches) and :func:`summary` of the mean under ``"summary"``.
    """
    vocab, length = check_int("vocab", vocab, 2), check_int("length", length, 2)
    batches = check_int("batches", batches, 2)
    per = check_int("samples", samples, batches) // batches
    g = torch.Generator().manual_seed(check_int("seed", seed, 0))
    W = torch.zeros(2 * vocab, 2 * vocab, dtype=torch.float64, device=device)
    parts = torch.stack([gradient(W, sequences(vocab, length, per, g).to(device)).cpu() for _ in range(batches)])
    mean = parts.mean(0)
    se = parts.std(0) / math.sqrt(batches)
    return {"grad": mean, "se": se, "summary": summary(mean, se)}


def summary(G: torch.Tensor, se: torch.Tensor) -> dict:
    """The entries and row sums the lemma speaks of, with standard errors: W[0, 0], W[|V|, |V|], the sums of rows
    0 and |V|, the mean row sum of rows 0 < i < |V| and of rows i > |V|, the share of Σ|W| in rows 0 and |V|, and
    the largest |entry| in rows 0 and |V| and elsewhere."""
    V = G.shape[0] // 2
    rows = G.sum(1)
    rows_se = se.pow(2).sum(1).sqrt()
    mid, high = rows[1:V], rows[V + 1:]
    total = G.abs().sum()
    return {"w_0_0": (float(G[0, 0]), float(se[0, 0])), "w_V_V": (float(G[V, V]), float(se[V, V])),
            "row_0": (float(rows[0]), float(rows_se[0])), "row_V": (float(rows[V]), float(rows_se[V])),
            "rows_mid": (float(mid.mean()), float(rows_se[1:V].mean() / math.sqrt(V - 1))),
            "rows_high": (float(high.mean()), float(rows_se[V + 1:].mean() / math.sqrt(V - 1))),
            "share_rows_0_V": float((G[0].abs().sum() + G[V].abs().sum()) / total) if total > 0 else math.nan,
            "max_rows_0_V": float(torch.cat([G[0], G[V]]).abs().max()),
            "max_other_rows": float(torch.cat([G[1:V], G[V + 1:]]).abs().max())}


def lemma_values(vocab: int, length: int) -> dict:
    """The lemma's eq. (4): −1/T (row 0), 2/T (row |V|), ≈ T/|V|² − 1/|V| (rows 0 < i < |V|), ≈ −T/|V|² + 1/|V|
    (rows i > |V|)."""
    T, V = length, vocab
    return {"row_0": -1 / T, "row_V": 2 / T, "rows_mid": T / V ** 2 - 1 / V, "rows_high": -T / V ** 2 + 1 / V}
