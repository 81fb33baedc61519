"""MQAR (eq. 46-47, App. C.1 and D.3).

Token ids: key i ↦ i (0 ≤ i < κ), value j ↦ κ + j (0 ≤ j < |V|): ``vocab_size = κ + |V|``.
x = [k_1 v_1 … k_κ v_κ | query section]: the κ pairs hold every key once in a random order, each with a value
drawn uniformly; the query section (positions 2κ+1..T) holds every key once as a query, in a random order at
random positions, interleaved with noise values drawn uniformly. Targets at the query positions are the index
j ∈ [0, |V|) of the value paired with the queried key (the paper's output layer W_o ∈ R^{|V|×d} has one row per
value); ``num_classes = |V|``. Needs T ≥ 3κ.

``keys``: ``"distinct"`` (the default; the theorems' and zoology's setting) draws the κ pair keys as a permutation
of the κ key tokens, so each is asked once. App. D.3 draws them i.i.d. from Unif{1..κ}, which repeats keys; with
``"iid"`` a key paired several times answers its latest value, and the query section asks each key present in the
pairs once (keys never paired are not asked: their query slots hold noise and are not scored).
"""
from __future__ import annotations

import torch

from ..checks import check_choice, check_int
from .batch import IGNORE, TaskBatch, generator

KEYS = ("distinct", "iid")


def mqar(samples: int, length: int = 100, kappa: int = 8, vocab: int = 128, *, keys: str = "distinct",
         seed: int = 0) -> TaskBatch:
    """MQAR in the format of eq. (46)-(47) (App. C.1, D.3); see the module docstring for the token ids and
    ``keys``.

    Defaults: T = 100 and |V| = 128 as in Fig. 2, κ = 8, distinct keys.
    """
    samples, length = check_int("samples", samples, 1), check_int("length", length, 1)
    kappa, vocab = check_int("kappa", kappa, 1), check_int("vocab", vocab, 2)
    check_choice("keys", keys, KEYS)
    if length < 3 * kappa:
        raise ValueError(f"MQAR needs length ≥ 3·kappa = {3 * kappa} (κ pairs and κ queries), got length={length}")
    g = generator(seed)
    rows = torch.arange(samples)[:, None]
    if keys == "distinct":
        keys = torch.argsort(torch.rand(samples, kappa, generator=g), dim=1)        # every key once
    else:
        keys = torch.randint(0, kappa, (samples, kappa), generator=g)               # i.i.d., repeats possible
    values = torch.randint(0, vocab, (samples, kappa), generator=g)                 # value index of pair i
    value_of_key = torch.full_like(values, IGNORE)
    for i in range(kappa):                                                          # the latest value wins
        value_of_key[rows[:, 0], keys[:, i]] = values[:, i]
    span = length - 2 * kappa
    inputs = kappa + torch.randint(0, vocab, (samples, length), generator=g)        # noise values everywhere
    inputs[:, 0:2 * kappa:2] = keys
    inputs[:, 1:2 * kappa:2] = kappa + values
    slots = torch.argsort(torch.rand(samples, span, generator=g), dim=1)[:, :kappa]
    slots = torch.sort(slots, dim=1).values + 2 * kappa                             # query positions
    queries = torch.argsort(torch.rand(samples, kappa, generator=g), dim=1)         # every key once
    answer = value_of_key.gather(1, queries)
    present = answer != IGNORE                       # a key absent from the pairs is not asked: noise stays
    inputs[rows, slots] = torch.where(present, queries, inputs[rows, slots])
    mask = torch.zeros(samples, length, dtype=torch.bool)
    mask[rows, slots] = present
    targets = torch.full((samples, length), IGNORE, dtype=torch.int64)
    targets[rows, slots] = answer
    return TaskBatch(inputs, targets, mask)
