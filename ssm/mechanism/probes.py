"""Training the simplified Mamba on the latest-value MQAR, and looking inside it (the mechanistic study's Sec. 3,
Figs. 4 and 7, App. C).

The study gives no recipe (its B-1): :data:`RECIPE` is the lab's, Adam at lr 0.01 with the cosine to 10⁻⁶, batch
16, 10 epochs of 2 000 sequences (1 250 steps), which brought every seed tried on the CPU to 100% test accuracy at
|K| = 1 (|V| = 8, n_ε = 3, T = 256). :func:`runs` lists the runs of one setting, one per seed.

Probes of one trained member (weights from the store), on one sequence (:func:`trace`, Fig. 4) or on every token
pair (:func:`mechanisms`, App. C), and of its W_Δ (:func:`w_delta_structure`, Fig. 7). With N = 1 and B = C = 1
the state h_t ∈ R^{2|V|} is computed here by its own loop in float64, not by the scan.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from signals.tasks import MQARLatestConfig

from ..models import make_model_config
from ..training.recipe import Recipe
from ..training.runs import Run

RECIPE = Recipe(epochs=10, lr=0.01, train_size=2000, val_size=200, test_size=1000)

#: App. C's approximate values, (what, where) → value; "rest" means the mean over the named index range
PAPER = {
    "write": {"forget e_0": 0.5, "forget e_|V|": 1.0, "forget 1..|V|−1": 0.05, "forget |V|+1..2|V|−1": 0.3,
              "input e_0": 15.0, "input e_|V|+v": 30.0},
    "read": {"forget e_0, e_|V|": 0.9, "forget 1..|V|−1": 0.4, "forget |V|+1..2|V|−1": 0.8,
             "input e_v": 10.0, "input e_|V|+k": 10.0},
    "forget": {"forget 0..|V|−1": 0.6, "forget |V|..2|V|−1": 0.4, "input e_v1": 10.0, "input e_|V|+v2": 10.0},
}


def runs(*, n_keys: int = 1, vocab: int = 8, noise: int = 3, length: int = 256, seeds=(0, 1, 2),
         recipe: Recipe = RECIPE, w_init: str = "uniform", learn_head: bool = False, bc_of: str = "token") -> list:
    """One run per seed of the simplified Mamba (d = 2|V|; |K| = 1: N = 1, B = C = 1; |K| > 1: N = |K|, learned
    B, C) on the latest-value MQAR, W_Δ initialised by ``w_init``."""
    task = MQARLatestConfig(length=length, n_keys=n_keys, vocab=vocab, noise=noise)
    model = make_model_config("mamba-simple", d=2 * vocab, N=n_keys, learn_bc=n_keys > 1, w_init=w_init,
                              learn_head=learn_head, bc_of=bc_of if n_keys > 1 else "token")
    return [Run(task, model, recipe, s) for s in seeds]


def steps_to_solve(arrays: dict, recipe: Recipe):
    """Optimizer steps until an epoch's training accuracy first reached 1 (None if it never did)."""
    acc = np.asarray(arrays["curve.train_acc"], dtype=float)
    hit = np.nonzero(acc >= 1.0)[0]
    return None if hit.size == 0 else int(hit[0] + 1) * recipe.steps_per_epoch


def _parts(params: dict, tokens: torch.Tensor, vocab: int):
    """x̂ (L, 2V), Δ (L, 2V), e^{Λ Δ} (L, 2V) of one sequence (N = 1), float64."""
    W = params["W_delta"].double()
    lam = -torch.exp(params["A_log"].double())[:, 0]
    e = F.one_hot(tokens, vocab).double()
    xhat = torch.cat([F.pad(e, (0, 0, 1, 0))[:-1], e], dim=-1)
    delta = F.softplus(xhat @ W.T)
    return xhat, delta, torch.exp(lam * delta)


@torch.no_grad()
def trace(params: dict, tokens: torch.Tensor, vocab: int) -> dict:
    """Fig. 4 along one sequence (tokens (L,)): the logits y_t (L, V), the state h_t, the input term Δ_t ⊙ x̂_t and
    the forgetting factor e^{Λ ⊙ Δ_t} (L, 2V each), with the key positions (token 0)."""
    xhat, delta, forget = _parts(params, tokens, vocab)
    drive = delta * xhat
    h = torch.zeros(2 * vocab, dtype=torch.float64)
    states = []
    for t in range(tokens.shape[0]):
        h = forget[t] * h + drive[t]
        states.append(h)
    h = torch.stack(states)
    return {"y": (h[:, vocab:] - h[:, :vocab]).numpy(), "h": h.numpy(), "input": drive.numpy(),
            "forget": forget.numpy(), "keys": (tokens == 0).nonzero()[:, 0].tolist()}


@torch.no_grad()
def mechanisms(params: dict, vocab: int) -> dict:
    """App. C's three cases at |K| = 1 (key 0, values 1..|V|−1), each averaged over its token pairs
    (x_{t−1}, x_t): write (key, v), read (v, key), forget (v1, v2). Keys as in :data:`PAPER`."""
    V = vocab
    values = list(range(1, V))

    def at(prev, cur):
        _, delta, forget = _parts(params, torch.tensor([prev, cur]), V)
        drive = delta[1] * torch.cat([F.one_hot(torch.tensor(prev), V), F.one_hot(torch.tensor(cur), V)]).double()
        return forget[1].numpy(), drive.numpy()

    def mean(rows):
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    write, read, forget = [], [], []
    for v in values:
        f, d = at(0, v)
        write.append({"forget e_0": f[0], "forget e_|V|": f[V], "forget 1..|V|−1": f[1:V].mean(),
                      "forget |V|+1..2|V|−1": f[V + 1:].mean(), "input e_0": d[0], "input e_|V|+v": d[V + v]})
        f, d = at(v, 0)
        read.append({"forget e_0, e_|V|": (f[0] + f[V]) / 2, "forget 1..|V|−1": f[1:V].mean(),
                     "forget |V|+1..2|V|−1": f[V + 1:].mean(), "input e_v": d[v], "input e_|V|+k": d[V]})
        for v2 in values:
            if v2 != v:
                f, d = at(v, v2)
                forget.append({"forget 0..|V|−1": f[:V].mean(), "forget |V|..2|V|−1": f[V:].mean(),
                               "input e_v1": d[v], "input e_|V|+v2": d[V + v2]})
    return {"write": mean(write), "read": mean(read), "forget": mean(forget)}


def w_delta_structure(params: dict, vocab: int, init: dict | None = None) -> dict:
    """Fig. 7: |W_Δ| and the share of its mass in rows 0 and |V|, overall and within the second half of their
    columns (the study: "close to zero almost everywhere, except in the second part of rows 0 and |V|"); with the
    member's initial weights ``init``, the same shares of the change W_Δ − W_Δ(0) that training made."""
    V = vocab

    def shares(W):
        W = W.double().abs()
        total = float(W.sum())
        return float(W[0].sum() + W[V].sum()) / total, float(W[0, V:].sum() + W[V, V:].sum()) / total

    out = {"abs": params["W_delta"].double().abs().numpy(), "rows_0_V_fraction_of_entries": 2 / (2 * V)}
    out["share_rows_0_V"], out["share_rows_0_V_second_half"] = shares(params["W_delta"])
    if init is not None:
        out["change_share_rows_0_V"], out["change_share_rows_0_V_second_half"] = \
            shares(params["W_delta"] - init["W_delta"])
    return out


#: Fig. 5's reported vectors (|K| = 2): B_1 ≈ (−1, 0.4), B_2 ≈ (−3, −7), C_1 ≈ (0, −7.5), C_2 ≈ (12.5, 0)
PAPER_FIG5 = {"<B_1, B_2>": 0.2, "<C_1, C_2>": 0.0}


def key_vectors(params: dict, n_keys: int, vocab: int | None = None) -> dict:
    """Fig. 5 (|K| = 2): the learned B and C of each key, their pairwise inner products and cosines. Per-token
    tables (``vocab=None``): rows 0..|K|−1, B(x_t = k) and C(x_t = k). Maps of the pair x̂ (``vocab`` = |V|): the
    key's own terms where it acts — B's row k (the key as the previous token: the value after it is written under
    B([e_k; e_v]) = W_B e_k + W_B e_{|V|+v}) and C's row |V| + k (the key as the current token: the query)."""
    rows_c = range(n_keys) if vocab is None else range(vocab, vocab + n_keys)
    B, C = params["B"].double()[:n_keys], params["C"].double()[list(rows_c)]
    out = {"B": B.tolist(), "C": C.tolist()}
    for name, M in (("B", B), ("C", C)):
        for i in range(n_keys):
            for j in range(i + 1, n_keys):
                dot = float(M[i] @ M[j])
                out[f"<{name}_{i + 1}, {name}_{j + 1}>"] = dot
                out[f"cos({name}_{i + 1}, {name}_{j + 1})"] = dot / float(M[i].norm() * M[j].norm())
    return out


def readout_distance(head: torch.Tensor) -> dict:
    """Fig. 6: the learned read-out W_o (V, 2V) against [−I  I]: the scale s minimising ‖W_o − s[−I  I]‖ and the
    relative distance ‖W_o − s[−I  I]‖ / ‖W_o‖ (0: the fixed read-out up to scale; 1: orthogonal to it), plain and
    with the rows' common part removed."""
    W = head.double()
    V = W.shape[0]
    ref = torch.cat([-torch.eye(V, dtype=torch.float64), torch.eye(V, dtype=torch.float64)], dim=1)
    scale = float((W * ref).sum() / (ref * ref).sum())
    return {"scale": scale, "relative_distance": float((W - scale * ref).norm() / W.norm()),
            "relative_distance_centred": _centred_distance(W, ref)}


def _centred_distance(W: torch.Tensor, ref: torch.Tensor) -> float:
    """The same after removing from both the part the softmax cannot see: adding one vector u to every row of W_o
    adds u·y to every logit, so each column's mean over the rows is subtracted first."""
    Wc, rc = W - W.mean(0, keepdim=True), ref - ref.mean(0, keepdim=True)
    s = float((Wc * rc).sum() / (rc * rc).sum())
    return float((Wc - s * rc).norm() / Wc.norm())
