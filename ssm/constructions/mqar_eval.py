"""Scoring the MQAR constructions of :mod:`ssm.constructions.mqar`: the Λ = 0 closed-form engine, accuracy on
generated sequences, and the search for the smallest Johnson-Lindenstrauss dimension that stays exact.

Public API::

    result = evaluate(variant, kappa, vocab, length, samples=10_000, compressed=False, d=None, seed=0)
    found = smallest_jl_dim(variant, kappa, vocab, length)
"""
from __future__ import annotations

import torch

from signals.checks import check_int
from signals.tasks import mqar as mqar_task
from ssm.models import OneLayerModel

from ..evaluate import accuracy
from .mqar import VARIANTS, build, jl_dim


def _chunk_size(model: OneLayerModel, length: int) -> int:
    """Sequences per forward pass, so that one chunk's (chunk, d, T) and (chunk, d, N) tensors stay ~10⁷ entries."""
    return max(1, int(1e7 // (model.d * (length + model.N))))


def _mixer_lambda0(model: OneLayerModel, xh: torch.Tensor) -> torch.Tensor:
    """The mixer's output in closed form when Λ = 0 (every construction here): no decay, so (eq. 62, 77, 88)

        y_t = Σ_{s ≤ t} ⟨C_t, B_s⟩ · w_s,   w_s = Δ_s ⊙ u_s (or u_s without input Δ),

    computed as a cumulative sum when N = 1 and as a causally masked (T × T) product otherwise (the quadratic
    "dual" form), never a (batch, T, d, N) tensor. xh: (batch, d, T) mixer input → y: (batch, d, T).
    """
    p = model.mixer.ssm_params(xh)
    A, u, delta, B, C = p["A"], p["u"], p["delta"], p["B"], p["C"]
    if A.is_complex() or B.is_complex() or C.is_complex() or bool((A != 0).any()):
        raise ValueError("engine='lambda0' needs a real mixer with Λ = 0")
    if not p["input_delta"]:
        w = u
    elif p["delta_mode"] == "channel":
        w = delta * u
    elif p["delta_mode"] == "scalar":
        w = delta[:, None, :] * u
    else:
        raise ValueError(f"engine='lambda0' does not handle delta_mode={p['delta_mode']!r} with input Δ")
    if B.shape[1] == 1:
        return torch.cumsum(w * B, dim=-1) * C
    kernel = torch.bmm(C.transpose(1, 2), B).tril()             # (batch, T_t, T_s): ⟨C_t, B_s⟩, s ≤ t
    return torch.bmm(w, kernel.transpose(1, 2))


def forward(model: OneLayerModel, tokens: torch.Tensor, engine: str = "scan",
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of a construction: (batch, T, |V|), or (M, |V|) at the M True positions of ``mask`` (batch, T).

    ``engine="scan"`` is ``model(tokens)`` (the scan engine of docs/design.md §2: Triton on CUDA, the PyTorch reference on
    CPU). ``engine="lambda0"`` runs the same layers with the mixer's recurrence in the Λ = 0 closed form of
    :func:`_mixer_lambda0` (equal up to rounding; tested), and the position-wise gate and output layer only at the
    masked positions.
    """
    if engine == "scan":
        logits = model(tokens)
        return logits if mask is None else logits[mask]
    if engine != "lambda0":
        raise ValueError(f"engine must be 'scan' or 'lambda0', got {engine!r}")
    x = model.embed(tokens)
    xh = model.conv(x) if model.conv is not None else x
    y = _mixer_lambda0(model, xh)
    if mask is not None:                                         # keep the scored positions: (1, d, M)
        x = x.transpose(1, 2)[mask].T[None]
        y = y.transpose(1, 2)[mask].T[None]
    if model.gate is not None:
        y = model.gate(x, y)
    logits = model.out(y.transpose(1, 2))
    return logits if mask is None else logits[0]


def score(model: OneLayerModel, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, *,
          engine: str = "scan") -> dict:
    """:func:`ssm.evaluate.accuracy` of a construction through ``engine`` (:func:`forward`), which computes only the
    scored positions, in chunks that keep each (chunk, d, T) tensor near 10⁷ entries."""
    return accuracy(model, inputs, targets, mask, batch_size=_chunk_size(model, inputs.shape[1]),
                    logits=lambda x, m: forward(model, x, engine, m))


def evaluate(variant: str, kappa: int, vocab: int, length: int, samples: int = 10_000, compressed: bool = False,
             d: int | None = None, seed: int = 0, N: int | None = None, *, data_seed: int | None = None,
             printed: bool = False, engine: str = "scan", device: str = "cpu", dtype=torch.float32) -> dict:
    """Build a construction and score it on ``samples`` MQAR sequences of :func:`signals.tasks.mqar`.

    ``data_seed`` seeds the data (default ``seed``); ``engine`` as in :func:`forward`. Returns ``sizes`` (see
    :func:`build`) plus ``kappa``, ``vocab``, ``length``, ``samples``, ``accuracy`` (correct / scored query
    positions), ``errors`` and ``scored``.
    """
    model, sizes = build(variant, kappa, vocab, length, compressed, d, seed, N, printed=printed, dtype=dtype)
    samples = check_int("samples", samples, 1)
    batch = mqar_task(samples, length, kappa, vocab, seed=seed if data_seed is None else data_seed)
    acc = score(model.to(device), batch.inputs, batch.targets, batch.mask, engine=engine)
    return {**sizes, "kappa": kappa, "vocab": vocab, "length": length, "samples": samples,
            "accuracy": acc["accuracy"], "errors": acc["scored"] - acc["correct"], "scored": acc["scored"]}


def jl_sizes(variant: str, kappa: int, p: int) -> dict:
    """The ``build`` arguments of a step-2 model whose JL dimension is p: mamba d = κ + p; mamba2 d = 2p, N = p
    (keys and values both p-dimensional); s4d d = κ p."""
    if variant == "mamba":
        return {"d": kappa + p}
    if variant == "mamba2":
        return {"d": 2 * p, "N": p}
    if variant == "s4d":
        return {"d": kappa * p}
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def smallest_jl_dim(variant: str, kappa: int, vocab: int, length: int, samples: int = 10_000, seed: int = 0,
                    *, engine: str = "lambda0", device: str = "cpu", p_max: int = 1024) -> dict:
    """Bisect the JL dimension p (:func:`jl_sizes`) for the smallest at which the step-2 model of ``seed`` scores
    accuracy 1.000 on ``samples`` sequences. Each p draws its own JL matrices, so accuracy need not be monotone
    in p: the answer is the bisection's (accuracy 1.000 at p, below 1.000 at p − 1), starting from Lem. 4's p
    and doubling it until it reaches 1.000 (or passes ``p_max``: then ``p`` is None).

    Returns ``{"p", "d", "N", "accuracy_below"}`` (``accuracy_below`` is the accuracy at p − 1).
    """
    lo = 1 if variant != "s4d" else 2
    cache: dict[int, float] = {}

    def acc(p: int) -> float:
        if p not in cache:
            r = evaluate(variant, kappa, vocab, length, samples, True, seed=seed, engine=engine, device=device,
                         **jl_sizes(variant, kappa, p))
            cache[p] = r["accuracy"]
        return cache[p]

    hi = max(lo, {"mamba": jl_dim(vocab), "mamba2": jl_dim(vocab), "s4d": jl_dim(vocab + 1)}[variant])
    while acc(hi) < 1.0:
        if hi >= p_max:
            return {"p": None, "d": None, "N": None, "accuracy_below": acc(hi)}
        lo, hi = hi + 1, min(2 * hi, p_max)
    while lo < hi:                                   # invariant: acc(hi) == 1
        mid = (lo + hi) // 2
        if acc(mid) == 1.0:
            hi = mid
        else:
            lo = mid + 1
    sizes = jl_sizes(variant, kappa, hi)
    below = acc(hi - 1) if hi - 1 >= (1 if variant != "s4d" else 2) else None
    return {"p": hi, "d": sizes["d"], "N": sizes.get("N", kappa if variant == "mamba" else 1),
            "accuracy_below": below}
