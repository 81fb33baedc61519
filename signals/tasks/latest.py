"""MQAR with the latest value (the mechanistic study's Alg. 1): a key may be paired several times and the query
asks for the value it was paired with last.

The vocabulary V = {0..|V|−1} is split into keys K = {0..|K|−1} and values L = {|K|..|V|−1}. Alg. 1 draws blocks
until the sequence reaches T − |K| tokens: s ~ Unif{0..n_ε} noise tokens from L, then a key k ~ p (uniform over K
unless ``key_probs``) and a value v ~ Unif(L); then it appends a random permutation of K, the queries.

Length rule (Alg. 1 lets the last block overshoot T − |K| by up to n_ε + 1): a block that would not fit in the
T − |K| positions is not drawn; the positions left before the queries are filled with noise from L, so every
sequence has exactly T tokens, its pairs whole. Targets: at each query the latest value of its key (a key never
paired is not asked: its position is not scored). Elsewhere ``targets="ignore"`` scores nothing (the default) and
``"identity"`` asks for the input token itself, as the study's App. A trains its models; accuracy counts the
query positions only in both (``query_mask``).
"""
from __future__ import annotations

import torch

from ..checks import check_choice, check_float, check_int
from .batch import IGNORE, TaskBatch, generator

TARGETS = ("ignore", "identity")


def mqar_latest(samples: int, length: int = 256, keys: int = 1, vocab: int = 8, noise: int = 3, *,
                key_probs=None, targets: str = "ignore", seed: int = 0) -> tuple:
    """Alg. 1's sequences: returns ``(TaskBatch, query_mask)``, (samples, T) tensors; ``query_mask`` marks the
    scored query positions (the batch's mask adds every position under ``targets="identity"``).

    Defaults are the study's |K| = 1 setting: T = 256, |V| = 8, n_ε = 3.
    """
    samples, length = check_int("samples", samples), check_int("length", length)
    keys, noise = check_int("keys", keys), check_int("noise", noise, 0)
    vocab = check_int("vocab", vocab, keys + 1)
    check_choice("targets", targets, TARGETS)
    if length < 3 * keys:
        raise ValueError(f"length must be at least 3·keys = {3 * keys} (a pair per key and the queries), got "
                         f"{length}")
    probs = torch.full((keys,), 1.0 / keys, dtype=torch.float64) if key_probs is None else \
        torch.tensor([check_float("key_probs", p, 0.0) for p in key_probs], dtype=torch.float64)
    if probs.numel() != keys or not probs.sum() > 0:
        raise ValueError(f"key_probs must hold {keys} non-negative numbers with a positive sum, got {key_probs!r}")
    g = generator(seed)
    n_values = vocab - keys
    body = length - keys
    blocks = body // 2 + 1                                       # more than can fit: every block takes ≥ 2 slots
    s = torch.randint(0, noise + 1, (samples, blocks), generator=g)
    k = torch.multinomial(probs.expand(samples, keys), blocks, replacement=True, generator=g)
    v = keys + torch.randint(0, n_values, (samples, blocks), generator=g)
    end = torch.cumsum(s + 2, dim=1)                             # one past each block's value
    kept = end <= body                                           # blocks that fit before the queries
    inputs = keys + torch.randint(0, n_values, (samples, length), generator=g)   # noise from L everywhere
    rows = torch.arange(samples)[:, None].expand(samples, blocks)
    pos = torch.where(kept, end - 2, body)                       # the key's slot; dropped blocks aim past the body
    spill = torch.full((samples, 1), 0, dtype=torch.int64)
    padded = torch.cat([inputs, spill.expand(samples, 2)], dim=1)                  # slots for the dropped blocks
    padded[rows, torch.where(kept, pos, length)] = torch.where(kept, k, 0)
    padded[rows, torch.where(kept, pos + 1, length + 1)] = torch.where(kept, v, 0)
    inputs = padded[:, :length]
    order = torch.argsort(torch.rand(samples, keys, generator=g), dim=1)          # the queries: a permutation of K
    inputs[:, body:] = order
    b_idx = torch.arange(1, blocks + 1)
    last = torch.stack([((kept & (k == key)) * b_idx).max(dim=1).values for key in range(keys)], dim=1) - 1
    latest = torch.where(last >= 0, v.gather(1, last.clamp(min=0)), IGNORE)       # (samples, keys)
    answer = latest.gather(1, order)
    out = torch.full((samples, length), IGNORE, dtype=torch.int64)
    out[:, body:] = answer
    query = torch.zeros(samples, length, dtype=torch.bool)
    query[:, body:] = answer != IGNORE
    if targets == "identity":
        out = torch.where(query, out, inputs)
        mask = torch.ones_like(query)
    else:
        mask = query
    return TaskBatch(inputs, out, mask), query
