"""The trainable model zoo: the paper's parameter counts, and each stacked member against an independent model."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ssm.layers import S4DMixer, S6Mixer
from ssm.models import MODELS, build, make_model_config, member
from ssm.training import paper
from ssm.training.reproduce import ROWS, model_config

pytestmark = pytest.mark.usefixtures("one_thread")


def printed_k(n: int) -> float:
    """A count as the tables print it: thousands to one decimal, halves rounded up."""
    return math.floor(n / 100 + 0.5) / 10


def ssm_rows():
    rows = {}
    for table in ("table-a1", "table-a3"):
        for (row, config, T), cell in paper.cells(table).items():
            if row != "TRANSFORMER":
                rows[(row, config)] = cell.params_k
    return rows


def test_all_36_ssm_rows_of_tables_a1_to_a4_have_the_printed_parameter_count():
    rows = ssm_rows()
    assert len(rows) == 36
    for (row, config), printed in rows.items():
        cfg = model_config(ROWS[row], config)
        model = build(cfg, vocab_size=128, num_classes=128, length=50)
        n = model.parameters()
        assert printed_k(n) == printed, f"{row} {config}: {n} parameters, printed {printed}k"
        d, N, V = cfg.d, cfg.N, 128
        d_e = d - 1 if cfg.pe else d
        formula = (V * d_e + d * V + d * N + d * (math.ceil(d / 16) + 2 * N) + math.ceil(d / 16) * d + d + 5 * d
                   if cfg.name == "mamba" else V * d_e + d * V + 2 * d * N + N + 4 * d)
        assert n == formula
    for table in ("table-a2", "table-a4"):                       # the same rows at T = 30, 40, 50
        for (row, config, T), cell in paper.cells(table).items():
            if row != "TRANSFORMER":
                assert cell.params_k == rows[(row, config)]


def test_table1_counts_and_stacked_tensors_match_the_formula():
    for name, (_, params_k) in paper.TABLE1.items():
        if name == "TRANSFORMER":
            continue
        cfg = model_config(ROWS[name], "d=32, N=8")
        model = build(cfg, vocab_size=128, num_classes=128, length=50)
        assert printed_k(model.parameters()) == params_k
        params = model.init([0, 1, 2])
        assert sum(p.numel() for p in params.values()) == 3 * model.parameters()


def test_transformer_counts_grow_by_d_per_position_and_stay_near_the_printed_ones():
    for (row, config, T), cell in paper.cells("table-a1").items():
        if row != "TRANSFORMER":
            continue
        cfg = model_config("transformer", config)
        model = build(cfg, vocab_size=128, num_classes=128, length=50)
        n = model.parameters(T)
        assert n == model.parameters(T - 1) + cfg.d
        assert abs(n / 1000 - cell.params_k) <= 0.3                 # docs/training.md tabulates the gaps
        stacked = build(cfg, vocab_size=128, num_classes=128, length=T).init([0])
        assert sum(p.numel() for p in stacked.values()) == n


def _tokens(R, B, L, V, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (R, B, L), generator=g)


def _grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True)


def mamba_reference(p, tokens, pe_scale, cfg):
    """One member from ssm.layers.S6Mixer (float64): LN_in, S6 with dt_proj = W_Δ W_r, D skip, LN_out, head."""
    d, N, R = cfg.d, cfg.N, cfg.dt_rank
    x = p["embedding"][tokens]
    if cfg.pe:
        t = torch.arange(1, tokens.shape[1] + 1, dtype=torch.float64) * pe_scale
        x = torch.cat([x, t.expand(tokens.shape[0], -1)[..., None]], -1)
    x = F.layer_norm(x, (d,), p["norm_in.weight"], p["norm_in.bias"])
    w, zero = p["x_proj"], torch.zeros(N, dtype=torch.float64)
    weights = {"dt_proj.weight": p["dt_proj.weight"] @ w[:R], "dt_proj.bias": p["dt_proj.bias"],
               "B_proj.weight": w[R:R + N], "B_proj.bias": zero, "C_proj.weight": w[R + N:], "C_proj.bias": zero,
               "A": -torch.exp(p["A_log"])}
    u = x.transpose(1, 2)
    y = functional_call(S6Mixer(d, N).double(), weights, (u,), {"backend": "reference"}) + p["D"][None, :, None] * u
    y = F.layer_norm(y.transpose(1, 2), (d,), p["norm_out.weight"], p["norm_out.bias"])
    return y @ p["head"].T


def s4d_reference(p, tokens, pe_scale, cfg):
    """One member from ssm.layers.S4DMixer (real, float64), one single-channel mixer per channel (C per channel)."""
    d, N = cfg.d, cfg.N
    x = p["embedding"][tokens]
    if cfg.pe:
        t = torch.arange(1, tokens.shape[1] + 1, dtype=torch.float64) * pe_scale
        x = torch.cat([x, t.expand(tokens.shape[0], -1)[..., None]], -1)
    x = F.layer_norm(x, (d,), p["norm_in.weight"], p["norm_in.bias"]).transpose(1, 2)
    ys = []
    for c in range(d):
        weights = {"A": -torch.exp(p["A_log"][c:c + 1]), "B": p["B"], "C": p["C"][c]}
        ys.append(functional_call(S4DMixer(1, N, complex_=False).double(), weights, (x[:, c:c + 1],),
                                  {"backend": "reference"}))
    y = F.layer_norm(torch.cat(ys, 1).transpose(1, 2), (d,), p["norm_out.weight"], p["norm_out.bias"])
    return y @ p["head"].T


def transformer_reference(p, tokens, pe_scale, cfg):
    """One member from torch.nn modules: pre-LN block with nn.MultiheadAttention (causal) and a GELU MLP."""
    d, L = cfg.d, tokens.shape[1]
    attn = torch.nn.MultiheadAttention(d, cfg.heads, batch_first=True, dtype=torch.float64)
    weights = {"in_proj_weight": p["attn.in_proj"], "in_proj_bias": p["attn.in_bias"],
               "out_proj.weight": p["attn.out_proj"], "out_proj.bias": p["attn.out_bias"]}
    x = p["embedding"][tokens] + p["position"][:L]
    a = F.layer_norm(x, (d,), p["norm1.weight"], p["norm1.bias"])
    mask = torch.ones(L, L, dtype=torch.bool).triu(1)
    x = x + functional_call(attn, weights, (a, a, a), {"attn_mask": mask, "need_weights": False})[0]
    m = F.layer_norm(x, (d,), p["norm2.weight"], p["norm2.bias"])
    x = x + F.linear(F.gelu(F.linear(m, p["mlp.fc1"], p["mlp.fc1_bias"])), p["mlp.fc2"], p["mlp.fc2_bias"])
    return F.linear(x, p["head"], p["head_bias"])


REFERENCES = {"mamba": mamba_reference, "s4d": s4d_reference, "transformer": transformer_reference}
CASES = [("mamba", dict(d=20, N=3, pe=True)), ("mamba", dict(d=33, N=1)), ("mamba", dict(d=5, N=2, pe=True,
          pe_scale="t")), ("s4d", dict(d=6, N=4, pe=True)), ("s4d", dict(d=3, N=1)), ("transformer", dict(d=8)),
         ("transformer", dict(d=12, heads=3))]


@pytest.mark.parametrize("name,fields", CASES)
@pytest.mark.parametrize("length", [7, 1])
def test_member_equals_an_independent_model_logits_and_gradients(name, fields, length):
    """Member i of a stacked ensemble (float64) against a model built from ssm.layers / torch.nn with member i's
    weights: the same logits, and the same gradients of a random functional of the logits."""
    cfg = make_model_config(name, **fields)
    V, C, R, B = 11, 9, 3, 4
    model = build(cfg, vocab_size=V, num_classes=C, length=length)
    params = {k: v.requires_grad_(True) for k, v in model.init([5, 6, 7], dtype=torch.float64).items()}
    with torch.no_grad():                       # move away from the initialisation's symmetric values
        for v in params.values():
            v.add_(0.1 * torch.randn(v.shape, generator=torch.Generator().manual_seed(v.numel()), dtype=v.dtype))
    tokens = _tokens(R, B, length, V)
    buffers = model.buffers([length] * R, dtype=torch.float64)
    logits = model.logits(params, tokens, buffers)
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    names = list(params)
    grads = _grads((logits * weights).sum(), [params[k] for k in names])
    for i in range(R):
        mine = {k: v.detach().clone().requires_grad_(True) for k, v in member(params, i).items()}
        scale = float(buffers["pe_scale"][i]) if "pe_scale" in buffers else None
        ref = REFERENCES[name](mine, tokens[i], scale, cfg)
        torch.testing.assert_close(logits[i], ref, rtol=1e-10, atol=1e-10)
        ref_grads = _grads((ref * weights[i]).sum(), [mine[k] for k in names])
        for k, g, rg in zip(names, grads, ref_grads):
            torch.testing.assert_close(g[i], rg, rtol=1e-9, atol=1e-10, msg=f"gradient of {k}, member {i}")


@pytest.mark.parametrize("name,fields", [CASES[0], CASES[3], CASES[5]])
def test_padding_to_a_longer_group_length_leaves_every_scored_position_unchanged(name, fields):
    cfg = make_model_config(name, **fields)
    short = build(cfg, vocab_size=11, num_classes=9, length=5)
    long = build(cfg, vocab_size=11, num_classes=9, length=9)
    params = long.init([3], dtype=torch.float64)
    tokens = _tokens(1, 2, 9, 11)
    padded = long.logits(params, tokens, long.buffers([5], dtype=torch.float64))
    p_short = dict(params, position=params["position"][:, :5]) if name == "transformer" else params
    alone = short.logits(p_short, tokens[:, :, :5], short.buffers([5], dtype=torch.float64))
    torch.testing.assert_close(padded[:, :, :5], alone, rtol=1e-12, atol=1e-12)


def test_registry_rejects_unknown_models_and_fields():
    with pytest.raises(ValueError, match="model must be one of mamba, s4d, transformer, mamba2"):
        make_model_config("rnn")
    with pytest.raises(ValueError, match="pe does not apply to model transformer"):
        make_model_config("transformer", pe=True)
    with pytest.raises(ValueError, match="d must be at least 2 with positional encoding"):
        make_model_config("mamba", d=1, pe=True)
    with pytest.raises(ValueError, match="heads must divide d=8"):
        make_model_config("transformer", d=8, heads=3)
    assert {"mamba", "s4d", "transformer"} <= set(MODELS)


def test_initialisation_is_seeded_and_device_independent_of_dtype():
    cfg = make_model_config("mamba", d=8, N=2)
    model = build(cfg, vocab_size=5, num_classes=5, length=4)
    a, b, c = model.init([1, 2]), model.init([1, 2]), model.init([2, 1], dtype=torch.float64)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[k][0], c[k][1].float()) for k in a)


@pytest.mark.parametrize("rows_per_slice", [0, 1, 3, 256])
@pytest.mark.parametrize("inner", [(16, 32), (), (7, 13), (4, 128)])
def test_sliced_linear_equals_per_member_matmuls_and_their_gradients(monkeypatch, rows_per_slice, inner):
    """x Wᵀ + b with the rows cut into slices against F.linear member by member, values and all three gradients,
    in float64, for x (R, *inner, in) of 512, 1 and 91 = 7·13 rows."""
    from ssm.models import stacked
    monkeypatch.setattr(stacked, "ROWS_PER_SLICE", rows_per_slice)
    R, n_in, n_out = 3, 5, 4
    g = torch.Generator().manual_seed(len(inner) + rows_per_slice)
    x = torch.randn(R, *inner, n_in, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(R, n_out, n_in, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(R, n_out, generator=g, dtype=torch.float64, requires_grad=True)
    y = stacked.linear(x, w, b)
    ref = torch.stack([F.linear(x[r], w[r], b[r]) for r in range(R)])
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    weights = torch.randn(y.shape, generator=g, dtype=torch.float64)
    mine = torch.autograd.grad((y * weights).sum(), (x, w, b))
    theirs = torch.autograd.grad((ref * weights).sum(), (x, w, b))
    for a, e in zip(mine, theirs):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
    rows = math.prod(inner)                  # the slices: the largest divisor of rows up to rows / ROWS_PER_SLICE
    most = max(rows // rows_per_slice, 1) if rows_per_slice else 1
    assert stacked._slices(rows) == max(k for k in range(1, most + 1) if rows % k == 0)
