"""Exact 1-layer solutions of MQAR (Sec. 5.1, Tab. 3, App. C.1): Thm. 2 (Mamba), Thm. 3 (Mamba-2), Thm. 4 (S4D).

Public API::

    model, sizes = build(variant, kappa, vocab, length, compressed=False, d=None, seed=0, N=None)

(scoring them — the Λ = 0 engine, accuracy on generated MQAR, the smallest JL dimension — is
:mod:`ssm.constructions.mqar_eval`.)

``build`` returns a ready :class:`ssm.models.OneLayerModel` (in eval mode, no gradients needed) whose weights are the
appendix's, and ``sizes = {"d", "N", "parameters", "bound", "bound_d", "bound_N", "p"}``. The model reads MQAR in
:func:`signals.tasks.mqar`'s token ids (key i ↦ i for 0 ≤ i < κ, value j ↦ κ + j for 0 ≤ j < |V|) and returns
logits over the |V| values, (batch, T) → (batch, T, |V|); only the query positions are meaningful.

Variants (``variant``) and their sizes; "step 1" is the one-hot construction (``compressed=False``), "step 2" the
Johnson-Lindenstrauss (JL, Lem. 4) compression (``compressed=True``):

=========  ==========================================  ========================  =================================
variant    architecture (Tab. 3)                       step 1: d, N              step 2: d, N
=========  ==========================================  ========================  =================================
"mamba"    Thm. 2: emb → conv(2, ReLU) → S6, no gate   d = κ + |V|, N = κ        d = κ + p, N = κ  (p = O(log|V|))
"mamba2"   Thm. 3: emb → Mamba-2 (3 convs), no gate    d = κ + |V|, N = κ        d = p_k + p_v, N = p_k
"s4d"      Thm. 4: emb → conv(2, ReLU) → S4D → gate    d = κ|V|, N = 1           d = κ p, N = 1 (p = O(log|V|))
=========  ==========================================  ========================  =================================

Step-2 sizes: when ``d`` (and for Mamba-2 ``N`` = p_k) is not given, each JL dimension is Lem. 4's
p = ⌈(4/ε²) ln(n/δ)⌉ for n vectors at ε = ½ (the largest ε the lemma allows) and δ = ½; a given ``d`` sets
p = d − κ (mamba), p_v = d − N (mamba2), p = d / κ (s4d). The JL matrices have i.i.d. ±1/√p entries drawn
from ``torch.Generator().manual_seed(seed)``. The theorems only give O(·) sizes for step 2, so the accuracy a step-2
model reaches depends on p and on the draw: measure it (:func:`ssm.constructions.mqar_eval.evaluate`); ``docs/constructions-mqar.md`` lists the
accuracies at Lem. 4's p and the smallest p that reached 1.000.

Weights (ReLU convolution of kernel 2, x̂_t = ReLU(c_0 x_{t−1} + c_1 x_t − b), x_0 = 0, eq. 54):

- Thm. 2 step 1 (53, 56, 58, 59): k_i = k e_i, v_j = v e_{κ+j}, (v, k, c_0, c_1, b) = (1, 2, 1, 2, 1); Λ = 0,
  Δ_t = 1 (Δ = SoftPlus(0·x̂ + ln(e − 1))), B(x̂) = C(x̂) = [I_κ | 0] x̂; W_o rows v_j^T.
- Thm. 2 step 2 (67, 70, 72): keys as step 1, v_j = [0_κ; M_v e_j + β 1_p], (β, k, c_0, c_1, b) = (2, 10, 1, 10, 3);
  W_o = [0 | M_v^T], b_o = −(c_1 k − b)(c_0 k − b) W_o s, s = (c_1 β − b) [0_κ; 1_p] (see fix 1).
- Thm. 3 step 1 (73-76): k_i = e_i, v_j = e_{κ+j}; u = conv_u(x) = x_t, B = conv_B(W_k x) = W_k x_{t−1},
  C = conv_C(W_k x) = W_k x_t with W_k = [I_κ | 0]; λ = 0, Δ_t = 1; W_o rows v_j^T.
- Thm. 3 step 2: k_i = [M_k e_i; 0], v_j = [0; M_v e_j], W_k = [I_{p_k} | 0], convolutions as step 1 (see fix 2).
- Thm. 4 step 1 (79-91): k_i = k·1 on block i (|V| entries), v_j = v·e_j in every block, (k, v, c_0, c_1, b) =
  (10, 1, 10, 1, k c_0); S4D with Λ = 0, B = C = 1, N = 1; gate σ(I x_t) with σ = ReLU; W_o rows [e_j^T … e_j^T].
- Thm. 4 step 2 (92-99): M ∈ R^{p×(|V|+1)} Rademacher, rotated (a Householder reflection) so that M e_{|V|+1} ∥ 1_p;
  k_i = k·1 on block i (p entries), v_j = (M e_j + β 1_p) in every block, (β, k, c_0, c_1, b) = (1, 10, 10, 1, 100);
  W_o rows [(M e_j)^T … (M e_j)^T] projected onto 1_p^⊥ in each block (see fix 3).

Where the appendix as printed fails, the smallest change that makes it exact (each is tested in tests/test_mqar.py):

1. Thm. 2 step 2, output bias. (72) writes y_t = (c_0 k − b)(c_1 v̄ + s) at a query, leaving out the factor
   C_t = (c_1 k − b) e_i that the read-out multiplies by, so the printed b_o = −(c_0 k − b) W_o s removes only
   1/(c_1 k − b) = 1/97 of the shift and leaves a class-dependent offset 96·7·17·(M_v^T 1)_j. We use
   b_o = −(c_1 k − b)(c_0 k − b) W_o s (``printed=True`` restores the printed bias).
2. Thm. 3 step 2, σ of the three convolutions. (74) defines conv_B(x) := x_{t−1}, conv_u(x) := conv_C(x) := x_t;
   ReLU realises that on the nonnegative one-hot embeddings of step 1, but on the ±1/√p JL embeddings it keeps
   only the positive half of each vector: ⟨ReLU k_a, ReLU k_b⟩ ≈ ¼ for a ≠ b against ≈ ½ for a = b, so every
   stored value enters every query with half the weight of the right one, and the negative half of every value
   is lost. We set σ = identity on the three convolutions of step 2 (so that they act as
   (74) writes). ``printed=True`` keeps ReLU.
3. Thm. 4 step 2, read-out of the shift. (99) assumes (M e_j)^T 1_p ≤ ε, but M e_{|V|+1} ∥ 1_p only gives
   (M e_j)^T 1_p = √p (M e_j)^T M e_{|V|+1} ≤ √p ε, so the β-shift adds k β √p (M e_j)^T M e_{|V|+1} to class j,
   of the size of the signal. We project each block of every W_o row onto 1_p^⊥ (subtract its mean), which removes
   the shift exactly and changes the scores ⟨M e_l, M e_j⟩ by at most ε². ``printed=True`` keeps the printed W_o.

Inputs the constructions assume, as :func:`signals.tasks.mqar` generates them (eq. 46): the κ context keys are
distinct and every key is queried at most once. A key queried twice is ill-posed for all three (the first query,
followed by a noise value v_×, is itself a key-value pair (k_i, v_×) that the size-2 convolution cannot tell from
a context pair, so it is stored next to the true value with the same weight). Within that format the edge cases
hold: adjacent queries (k_i, k_l) (Thm. 2: (66), c_0 ≪ c_1; Thm. 3, 4: exact), a query right after the last pair,
a value index equal to a key index, a value shared by several keys, a query at the last position.
"""
from __future__ import annotations

import math

import torch

from signals.checks import check_int
from ssm.models import OneLayerModel

VARIANTS = ("mamba", "mamba2", "s4d")
JL_EPS = 0.5
JL_DELTA = 0.5
_DT_ONE = math.log(math.expm1(1.0))          # SoftPlus(_DT_ONE) = 1: Δ_t ≡ 1 with a zero weight


def jl_dim(n: int, eps: float = JL_EPS, delta: float = JL_DELTA) -> int:
    """Lem. 4's projection dimension p = ⌈(4/ε²) ln(n/δ)⌉ for n vectors (ε ∈ (0, ½], δ ∈ (0, 1))."""
    return max(1, math.ceil(4.0 / eps ** 2 * math.log(n / delta)))


def rademacher(p: int, n: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """A (p, n) JL matrix with i.i.d. entries ±1/√p (Lem. 4); each column has unit norm."""
    signs = torch.randint(0, 2, (p, n), generator=generator).to(dtype) * 2 - 1
    return signs / math.sqrt(p)


def _rotate_to_ones(M: torch.Tensor) -> torch.Tensor:
    """Apply the Householder reflection H with H m = 1_p/√p to every column of M, m = M[:, −1] (unit norm)."""
    p = M.shape[0]
    m = M[:, -1]
    u = torch.full_like(m, 1.0 / math.sqrt(p))
    w = m - u
    if float(w.norm()) < 1e-12:
        return M.clone()
    H = torch.eye(p, dtype=M.dtype) - 2.0 * torch.outer(w, w) / (w @ w)
    return H @ M


def _check_args(variant, kappa, vocab, length, compressed, d, N, seed):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    kappa = check_int("kappa", kappa, 1)
    vocab = check_int("vocab", vocab, 2)
    length = check_int("length", length, 1)
    check_int("seed", seed, 0)
    if kappa > vocab:
        raise ValueError(f"kappa={kappa} exceeds vocab={vocab}: MQAR takes κ ≤ |V| keys")
    if length < 3 * kappa:
        raise ValueError(f"length={length} is below 3·kappa = {3 * kappa} (κ pairs and κ queries)")
    if d is not None:
        check_int("d", d, 1)
    if N is not None:
        check_int("N", N, 1)
        if variant != "mamba2" or not compressed:
            raise ValueError(f"N is fixed by the construction for {variant!r}"
                             f"{' (compressed)' if compressed else ''} (N = {'κ' if variant != 's4d' else 1}); "
                             f"got N={N}")
    return kappa, vocab, length


def _zero_(model: OneLayerModel) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()


def _set_conv(conv, c0: float, c1: float, b: float) -> None:
    """Kernel-2 convolution σ(c_0 x_{t−1} + c_1 x_t − b) (eq. 54): ``weight[:, 0]`` is c_0, ``weight[:, 1]`` c_1."""
    conv.weight[:, 0] = c0
    conv.weight[:, 1] = c1
    conv.bias[:] = -b


def _build_mamba(kappa, vocab, d, compressed, gen, printed):
    """Thm. 2 (eq. 53-59 step 1, eq. 67-72 step 2). Returns (model, p, bound)."""
    if compressed:
        p = d - kappa if d is not None else jl_dim(vocab)
        if p < 1:
            raise ValueError(f"d={d} leaves no value dimension: the compressed Thm. 2 model needs d ≥ κ + 1 = "
                             f"{kappa + 1}")
        d = kappa + p
        beta, k, c0, c1, b = 2.0, 10.0, 1.0, 10.0, 3.0                             # (70)
        Mv = rademacher(p, vocab, gen)
        values = Mv + beta                                                          # (67), shifted
        bound = (f"d = O(κ + log|V|), N = κ (Thm. 2); Lem. 4 (ε = {JL_EPS}, δ = {JL_DELTA}): "
                 f"d = κ + {jl_dim(vocab)} = {kappa + jl_dim(vocab)}")
        bound_d = kappa + jl_dim(vocab)
    else:
        need = kappa + vocab
        if d is not None and d < need:
            raise ValueError(f"d={d} is below the Thm. 2 bound d = κ + |V| = {need}")
        d = need if d is None else d
        p = vocab
        v, k, c0, c1, b = 1.0, 2.0, 1.0, 2.0, 1.0                                  # (56)
        values = v * torch.eye(vocab, dtype=torch.float64)
        bound = f"d = κ + |V| = {need}, N = κ = {kappa} (Thm. 2, step 1)"
        bound_d = need
    model = OneLayerModel(kappa + vocab, d, kappa, num_classes=vocab, mixer="mamba", conv_kernel=2,
                          conv_activation="relu", gate=False)
    _zero_(model)
    with torch.no_grad():
        E = model.embedding.weight
        E[:kappa, :kappa] = k * torch.eye(kappa)                                    # (53) keys
        E[kappa:, kappa:kappa + p] = values.T.to(E.dtype)                           # (53)/(67) values
        _set_conv(model.conv, c0, c1, b)                                            # (54)
        mix = model.mixer
        mix.A.zero_()                                                               # Λ = 0 (58)
        mix.dt_proj.bias.fill_(_DT_ONE)                                             # Δ_t = 1 (58)
        mix.B_proj.weight[:, :kappa] = torch.eye(kappa)                             # B = W_k x̂ (58)
        mix.C_proj.weight[:, :kappa] = torch.eye(kappa)                             # C = W_k x̂ (58)
        if compressed:
            Wo = Mv.T                                                               # (72): W_o = [0 | M_v^T]
            model.out.weight[:, kappa:kappa + p] = Wo.to(E.dtype)
            s = (c1 * beta - b) * torch.ones(p, dtype=torch.float64)                # s of (71a)
            scale = (c0 * k - b) if printed else (c1 * k - b) * (c0 * k - b)        # fix 1
            model.out.bias[:] = (-scale * (Wo @ s)).to(E.dtype)
        else:
            model.out.weight[:, kappa:kappa + vocab] = values.to(E.dtype)           # (59): rows v_j^T
    return model, p, bound, bound_d, kappa


def _build_mamba2(kappa, vocab, d, N, compressed, gen, printed):
    """Thm. 3 (eq. 73-77 step 1; step 2 with JL keys and values). Returns (model, p, bound)."""
    if compressed:
        pk = N if N is not None else jl_dim(kappa)
        pv = d - pk if d is not None else jl_dim(vocab)
        if pv < 1:
            raise ValueError(f"d={d} leaves no value dimension next to N={pk} key dimensions: the compressed "
                             f"Thm. 3 model needs d ≥ N + 1 = {pk + 1}")
        keys = torch.zeros(pk + pv, kappa, dtype=torch.float64)
        keys[:pk] = rademacher(pk, kappa, gen)
        values = torch.zeros(pk + pv, vocab, dtype=torch.float64)
        values[pk:] = rademacher(pv, vocab, gen)
        d, nstate = pk + pv, pk
        activation = "relu" if printed else "none"                                 # fix 2
        bound = (f"d = O(log κ + log|V|), N = log κ (Thm. 3); Lem. 4 (ε = {JL_EPS}, δ = {JL_DELTA}): "
                 f"N = {jl_dim(kappa)}, d = {jl_dim(kappa) + jl_dim(vocab)}")
        bound_d, bound_N = jl_dim(kappa) + jl_dim(vocab), jl_dim(kappa)
        p = pv
    else:
        need = kappa + vocab
        if d is not None and d < need:
            raise ValueError(f"d={d} is below the Thm. 3 step-1 bound d = κ + |V| = {need}")
        d = need if d is None else d
        keys = torch.zeros(d, kappa, dtype=torch.float64)
        keys[:kappa] = torch.eye(kappa)                                             # (73)
        values = torch.zeros(d, vocab, dtype=torch.float64)
        values[kappa:kappa + vocab] = torch.eye(vocab)                              # (73)
        nstate, activation, p = kappa, "relu", vocab
        bound = f"d = κ + |V| = {need}, N = κ = {kappa} (Thm. 3, step 1)"
        bound_d, bound_N = need, kappa
    model = OneLayerModel(kappa + vocab, d, nstate, num_classes=vocab, mixer="mamba2", conv_kernel=2,
                          conv_activation=activation, gate=False)
    _zero_(model)
    with torch.no_grad():
        E = model.embedding.weight
        E[:kappa] = keys.T.to(E.dtype)
        E[kappa:] = values.T.to(E.dtype)
        mix = model.mixer
        mix.u_proj.weight.copy_(torch.eye(d))                                       # u = x
        mix.B_proj.weight[:, :nstate] = torch.eye(nstate)                           # W_k (75)
        mix.C_proj.weight[:, :nstate] = torch.eye(nstate)                           # W_k (75)
        _set_conv(mix.conv_u, 0.0, 1.0, 0.0)                                        # conv_u := x_t (74)
        _set_conv(mix.conv_B, 1.0, 0.0, 0.0)                                        # conv_B := x_{t−1} (74)
        _set_conv(mix.conv_C, 0.0, 1.0, 0.0)                                        # conv_C := x_t (74)
        mix.A.zero_()                                                               # λ = 0 (75)
        mix.dt_proj.bias.fill_(_DT_ONE)                                             # Δ_t = 1
        model.out.weight.copy_(values.T.to(E.dtype))                                # (76): rows v_j^T
    return model, p, bound, bound_d, bound_N


def _build_s4d(kappa, vocab, d, compressed, gen, printed):
    """Thm. 4 (eq. 79-91 step 1, eq. 92-99 step 2). Returns (model, p, bound)."""
    if compressed:
        if d is not None and d % kappa:
            raise ValueError(f"d={d} is not a multiple of kappa={kappa}: the compressed Thm. 4 model has "
                             f"d = κ·p")
        p = d // kappa if d is not None else jl_dim(vocab + 1)
        if p < 2:
            raise ValueError(f"d={d} gives blocks of p={p} < 2 entries: the compressed Thm. 4 model needs "
                             f"d ≥ 2κ = {2 * kappa}")
        beta, k, c0, c1 = 1.0, 10.0, 10.0, 1.0                                      # (94)
        M = _rotate_to_ones(rademacher(p, vocab + 1, gen))[:, :vocab]              # rotated JL, M e_{|V|+1} ∥ 1
        block_values = M + beta                                                     # (93)
        readout = M if printed else M - M.mean(dim=0, keepdim=True)                 # (99) rows; fix 3
        bound = (f"d = O(κ log|V|), N = 1 (Thm. 4); Lem. 4 (ε = {JL_EPS}, δ = {JL_DELTA}): "
                 f"d = κ·{jl_dim(vocab + 1)} = {kappa * jl_dim(vocab + 1)}")
        bound_d = kappa * jl_dim(vocab + 1)
    else:
        need = kappa * vocab
        if d is not None and d != need:
            raise ValueError(f"d={d} differs from the Thm. 4 step-1 size d = κ|V| = {need}")
        p = vocab
        k, v, c0, c1 = 10.0, 1.0, 10.0, 1.0                                         # step 1
        block_values = v * torch.eye(vocab, dtype=torch.float64)                    # (80)
        readout = torch.eye(vocab, dtype=torch.float64)                             # (91)
        bound = f"d = κ|V| = {need}, N = 1 (Thm. 4, step 1)"
        bound_d = need
    b = k * c0
    d = kappa * p
    model = OneLayerModel(kappa + vocab, d, 1, num_classes=vocab, mixer="s4d", conv_kernel=2,
                          conv_activation="relu", gate=True, gate_activation="relu", s4d_complex=False)
    _zero_(model)
    with torch.no_grad():
        E = model.embedding.weight
        for i in range(kappa):
            E[i, i * p:(i + 1) * p] = k                                             # (79)/(92): k·1 on block i
        E[kappa:] = block_values.T.repeat(1, kappa).to(E.dtype)                     # (80)/(93): every block
        _set_conv(model.conv, c0, c1, b)                                            # (82)/(94)
        mix = model.mixer
        mix.A.zero_()                                                               # Λ = 0: e^Λ = 1 (88)
        mix.B.fill_(1.0)
        mix.C.fill_(1.0)
        model.gate.proj.weight.copy_(torch.eye(d))                                  # gate: identity (90)
        model.out.weight.copy_(readout.T.repeat(1, kappa).to(E.dtype))             # (91)/(99)
    return model, p, bound, bound_d, 1


def build(variant: str, kappa: int, vocab: int, length: int, compressed: bool = False, d: int | None = None,
          seed: int = 0, N: int | None = None, *, printed: bool = False, dtype=torch.float32):
    """The exact MQAR model of Thm. 2 (``"mamba"``), Thm. 3 (``"mamba2"``) or Thm. 4 (``"s4d"``).

    Parameters
    ----------
    variant : ``"mamba"``, ``"mamba2"`` or ``"s4d"``.
    kappa : number of key-value pairs κ (and of keys), 1 ≤ κ ≤ |V|.
    vocab : value vocabulary size |V| ≥ 2.
    length : sequence length T ≥ 3κ the model will be used on (checked only; the weights do not depend on it).
    compressed : the JL-compressed form (each theorem's step 2) instead of the one-hot form (step 1).
    d : embedding size. Step 1: at least the theorem's (κ + |V| for mamba/mamba2, extra channels stay zero;
        exactly κ|V| for s4d); default the theorem's. Step 2: sets the JL dimension (module docstring); default
        from Lem. 4.
    seed : seed of the JL matrices (step 2 only).
    N : state size of the compressed Mamba-2 model (its key JL dimension p_k); fixed by the theorem otherwise.
    printed : step 2 only — build exactly as printed, without fixes 1-3 of the module docstring.
    dtype : parameter dtype.

    Returns
    -------
    model : :class:`ssm.models.OneLayerModel` in eval mode, tokens (batch, T) → logits (batch, T, |V|).
    sizes : ``{"variant", "compressed", "d", "N", "p", "parameters", "bound", "bound_d", "bound_N"}``; ``p`` is
        the JL dimension of the values (|V| in step 1), ``bound`` a one-line statement of the paper's sizes,
        ``bound_d``/``bound_N`` their numbers (step 2: Lem. 4's at ε = ½, δ = ½).

    Raises ValueError (one line naming the value) for an unknown variant, κ > |V|, T < 3κ, or a d (or N) that
    cannot hold the construction.
    """
    kappa, vocab, length = _check_args(variant, kappa, vocab, length, compressed, d, N, seed)
    gen = torch.Generator().manual_seed(seed)
    if variant == "mamba":
        model, p, bound, bound_d, bound_N = _build_mamba(kappa, vocab, d, compressed, gen, printed)
    elif variant == "mamba2":
        model, p, bound, bound_d, bound_N = _build_mamba2(kappa, vocab, d, N, compressed, gen, printed)
    else:
        model, p, bound, bound_d, bound_N = _build_s4d(kappa, vocab, d, compressed, gen, printed)
    model = model.to(dtype).eval().requires_grad_(False)
    sizes = {"variant": variant, "compressed": bool(compressed), **model.sizes(), "p": p, "bound": bound,
             "bound_d": bound_d, "bound_N": bound_N}
    return model, sizes
