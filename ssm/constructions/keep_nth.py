"""Exact S6 weights that solve KEEP n-TH with positional encoding (Cor. 2, App. A.3; the model of Tab. 1).

The model is Tab. 1's: embedding (position t in the last element) → S6 mixer → output layer, no convolution and
no gate. Cor. 2 drives Δ with the position alone, eq. (32a):

    Δ_t = SoftPlus(w_Δ t − w_Δ n),  w_Δ → −∞   ⇒   Δ_t → ∞ for t < n (erase),   Δ_t → 0 for t > n (keep).

Weights (every channel c, one state, N = 1):

- embedding: token v ↦ [e_v; t] (one-hot, d = |V| + 1), or with ``compressed=True`` v ↦ [cos θ_v, sin θ_v; t],
  θ_v = 2πv/|V| (d = 3 for any |V|);
- Λ = −λ with λ = 25; B_t = C_t = 1 (biases of the B and C projections);
- Δ_t[c] = SoftPlus(w (t − n) + β) with w = −40, β = 5, read from the PE element;
- output: W_o = the embedding table (one row per token, PE column 0), b_o = 0.

Why this solves the task (t ≥ n), with the forward-Euler input term of eq. (14f):
y_t[c] = Σ_{i≤t} Δ_i x_i[c] Π_{r=i+1..t} e^{−λΔ_r}. At i = n, Δ_n = SoftPlus(5) ≈ 5.007 and every later
Δ_r ≤ SoftPlus(−35) ≈ 6e−16, so x_n enters with weight 5.007 and is then kept (e^{−25·6e−16} = 1 in float32).
Every i < n is multiplied at step n by e^{−λΔ_n} = e^{−125.2} ≈ 5e−55, which is 0 in float32; every i > n
enters with weight ≤ 6e−16. So y_t = 5.007·emb(x_n) and argmax_v ⟨emb(v), y_t⟩ = x_n.

Differences from the proof as printed, and why:

1. Cor. 2 combines two Heavisides, ⟨x, H(s − (n−1)) − H(s − n)⟩ = x_n, in the basis form (8), whose input term
   carries no Δ. The S6 layer of eq. (14f) uses the forward-Euler term (Δ_t ⊙ x_t) ⊗ B_t: once Δ → 0 a token
   is neither forgotten *nor written*, so one switch suffices — the step where Δ falls from "erase" to "keep" writes
   x_n with weight Δ_n and nothing after it is written. Hence N = 1 instead of the proof's two bases. (The proof
   also writes h_1 − h_2 = H(s − n) − H(s − (n−1)), which is −1 on [n−1, n): the sign is flipped.)
2. At t = n eq. (32a) gives SoftPlus(0) = log 2, neither ∞ nor 0, for every finite w_Δ. The offset β puts the
   switch between n − 1 and n + 1 and makes step n write with Δ_n = SoftPlus(β).
3. w_Δ → −∞ and Δ → ∞ are saturated at w = −40, λ = 25: all values stay below ~40·T and the erasing factor
   e^{−λΔ} underflows to exactly 0 in float32 (and is ≤ 1e−54 in float64), so the weights are exact in float32
   on a GPU as well.
"""
from __future__ import annotations

import math

import torch

from signals.checks import check_int

from ..models import OneLayerModel

LAMBDA = 25.0     # Λ = −λ
W_DELTA = -40.0   # slope of Δ in the position (eq. 32a's w_Δ, saturated)
BETA = 5.0        # Δ_n = SoftPlus(β)
MAX_COMPRESSED_VOCAB = 1024


def paper_bound(vocab: int) -> dict:
    """Sizes the paper states for Cor. 2: two Mamba bases (state size 2); it gives no bound on d."""
    return {"d": None, "N": 2, "source": "Cor. 2 (App. A.3): two Heaviside bases H(s−n), H(s−(n−1))"}


def required_sizes(vocab: int, compressed: bool = False) -> dict:
    """Smallest d, N this construction needs: d = |V| + 1 (one-hot and PE) or 3 (compressed), N = 1."""
    return {"d": 3 if compressed else vocab + 1, "N": 1}


def token_embedding(vocab: int, compressed: bool = False, dtype=torch.float32) -> torch.Tensor:
    """The (|V|, 2 or |V|) token table: one-hot rows, or unit vectors at angles 2πv/|V| when ``compressed``."""
    if compressed:
        theta = 2 * math.pi * torch.arange(vocab, dtype=torch.float64) / vocab
        return torch.stack([torch.cos(theta), torch.sin(theta)], dim=1).to(dtype)
    return torch.eye(vocab, dtype=dtype)


def build(vocab: int = 128, n: int = 5, *, length: int | None = None, compressed: bool = False,
          d: int | None = None, N: int | None = None) -> OneLayerModel:
    """The KEEP n-TH model of Cor. 2 (see the module docstring), for tokens in [0, vocab).

    ``d``, ``N`` default to the smallest sizes (:func:`required_sizes`); larger values pad with inert channels and
    states. ``length`` (optional) checks n ≤ T. The weights do not depend on T: the model solves KEEP n-TH at every
    length T ≥ n. Raises ValueError for vocab < 2, n < 1, n > T, d or N below the construction's needs, or a
    compressed vocabulary above 1024 (the angular margin 1 − cos(2π/|V|) must stay far above float32 rounding).
    """
    check_int("vocab", vocab, 2)
    check_int("n", n)
    if length is not None and n > length:
        raise ValueError(f"n must be at most the sequence length T={length}, got n={n}")
    if compressed and vocab > MAX_COMPRESSED_VOCAB:
        raise ValueError(f"the compressed KEEP n-TH embedding supports vocab ≤ {MAX_COMPRESSED_VOCAB}, got {vocab}")
    need = required_sizes(vocab, compressed)
    d = need["d"] if d is None else d
    N = need["N"] if N is None else N
    if d < need["d"]:
        raise ValueError(f"d={d} is below the {need['d']} this construction needs (|V| + 1 = {vocab + 1} one-hot "
                         f"and position" + (", or 3 compressed)" if not compressed else ")"))
    if N < need["N"]:
        raise ValueError(f"N={N} is below the 1 state this construction needs")
    model = OneLayerModel(vocab, d, N, num_classes=vocab, mixer="mamba", conv_kernel=None, gate=False,
                          positional_encoding=True)
    emb = token_embedding(vocab, compressed)
    k = emb.shape[1]
    s6 = model.mixer
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embedding.weight[:, :k] = emb
        s6.A.fill_(-LAMBDA)
        s6.dt_proj.weight[:, d - 1] = W_DELTA                 # Δ_t = SoftPlus(w t + β − w n) on every channel
        s6.dt_proj.bias.fill_(BETA - W_DELTA * n)
        s6.B_proj.bias[0] = 1.0                               # B_t = C_t = e_1 (the other states stay empty)
        s6.C_proj.bias[0] = 1.0
        model.out.weight[:, :k] = emb
    return model
