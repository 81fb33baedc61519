"""The recall models (Mamba with convolution and gate, Mamba-Δ⊤, Mamba-2, Mamba-S4D): each stacked member against
a float64 model written here from Tab. 2 / eq. 15 with torch.nn.functional and an explicit loop over time
(independent of the scan engine), their parameter counts against the formulas, and the records' keys."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from ssm.models import MODELS, build, make_model_config, member

pytestmark = pytest.mark.usefixtures("one_thread")


def recurrence(a, b, C):
    """h_t = a_t ⊙ h_{t−1} + b_t, y_t[c] = Σ_n C_t[(c,) n] h_t[c, n]: a, b (B, L, d, N); C (B, L, N) or (d, N)."""
    h = torch.zeros_like(a[:, 0])
    ys = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        c = C[:, t][:, None, :] if C.dim() == 3 else C[None]
        ys.append((h * c).sum(-1))
    return torch.stack(ys, 1)


def conv(x, p, prefix):
    """Causal depthwise Conv1d of PyTorch (padding k − 1, trailing outputs dropped) on x (B, L, c)."""
    w, b = p[f"{prefix}.weight"], p[f"{prefix}.bias"]
    L = x.shape[1]
    return F.conv1d(x.transpose(1, 2), w[:, None, :], b, padding=w.shape[1] - 1, groups=w.shape[0])[..., :L] \
        .transpose(1, 2)


def reference(name, p, tokens, cfg):
    """logits (B, L, classes) of one member with weights p."""
    d, N = cfg.d, cfg.N
    xbar = F.layer_norm(p["embedding"][tokens], (d,), p["norm_in.weight"], p["norm_in.bias"])
    if name == "mamba2":
        delta = F.softplus(F.linear(xbar, p["dt_proj.weight"], p["dt_proj.bias"]))[..., 0]       # (B, L)
        branch = {b: F.silu(conv(F.linear(xbar, p[f"{b}_proj"]), p, f"conv_{b}")) for b in ("u", "B", "C")}
        u, Bt, Ct = branch["u"], branch["B"], branch["C"]
        a = torch.exp(-torch.exp(p["A_log"]) * delta)[..., None, None].expand(*u.shape, N)
        y = recurrence(a, (delta[..., None] * u)[..., None] * Bt[:, :, None, :], Ct) + p["D"] * u
    else:
        u = F.silu(conv(xbar, p, "conv")) if cfg.conv else xbar
        A = -torch.exp(p["A_log"])                                                             # (d, N)
        if name == "mamba-s4d":
            a = torch.exp(A).expand(*u.shape, N)
            y = recurrence(a, u[..., None] * p["B"], p["C"])
        else:
            R = cfg.dt_rank
            proj = F.linear(u, p["x_proj"])
            delta = F.softplus(F.linear(proj[..., :R], p["dt_proj.weight"], p["dt_proj.bias"]))
            Bt, Ct = proj[..., R:R + N], proj[..., R + N:]
            if name == "mamba-dt":                                                             # eq. 15
                a = torch.exp(A * delta[:, :, None, :])
                b = u[..., None] * Bt[:, :, None, :] * (delta[:, :, None, :] if cfg.input_delta else 1)
            else:                                                                              # eq. 14f
                a = torch.exp(A * delta[..., None])
                b = (delta * u)[..., None] * Bt[:, :, None, :]
            y = recurrence(a, b, Ct) + p["D"] * u
    if cfg.gate:
        y = F.silu(F.linear(xbar, p["gate.weight"], p["gate.bias"])) * y
    y = F.layer_norm(y, (d,), p["norm_out.weight"], p["norm_out.bias"])
    return y @ p["head"].T


CASES = [("mamba", dict(d=12, N=3, conv=4)), ("mamba", dict(d=7, N=2, conv=2, gate=True)),
         ("mamba-dt", dict(d=10, N=5, conv=4)), ("mamba-dt", dict(d=6, N=1)),
         ("mamba-dt", dict(d=5, N=3, conv=2, input_delta=True)), ("mamba2", dict(d=9, N=4)),
         ("mamba2", dict(d=5, N=3, conv=3, gate=True)), ("mamba-s4d", dict(d=8, N=2)),
         ("mamba-s4d", dict(d=4, N=1, conv=1, gate=False))]


@pytest.mark.parametrize("name,fields", CASES)
@pytest.mark.parametrize("length", [9, 1])
def test_member_equals_the_equations_logits_and_gradients(name, fields, length):
    cfg = make_model_config(name, **fields)
    V, C, R, B = 13, 7, 3, 2
    model = build(cfg, vocab_size=V, num_classes=C, length=length)
    params = {k: v.requires_grad_(True) for k, v in model.init([1, 2, 3], dtype=torch.float64).items()}
    with torch.no_grad():
        for v in params.values():
            v.add_(0.1 * torch.randn(v.shape, generator=torch.Generator().manual_seed(v.numel()), dtype=v.dtype))
    tokens = torch.randint(0, V, (R, B, length), generator=torch.Generator().manual_seed(4))
    logits = model.logits(params, tokens, model.buffers([length] * R, dtype=torch.float64))
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    names = list(params)
    grads = torch.autograd.grad((logits * weights).sum(), [params[k] for k in names])
    for i in range(R):
        mine = {k: v.detach().clone().requires_grad_(True) for k, v in member(params, i).items()}
        ref = reference(name, mine, tokens[i], cfg)
        torch.testing.assert_close(logits[i], ref, rtol=1e-10, atol=1e-10)
        ref_grads = torch.autograd.grad((ref * weights[i]).sum(), [mine[k] for k in names])
        for k, g, rg in zip(names, grads, ref_grads):
            torch.testing.assert_close(g[i], rg, rtol=1e-9, atol=1e-10, msg=f"gradient of {k}, member {i}")


def formula(name, cfg, V, C):
    """Parameters of one member, from the module docstrings' counts."""
    d, N, k = cfg.d, cfg.N, cfg.conv
    block = (d * k + d if k else 0) + (d * d + d if cfg.gate else 0)
    if name == "mamba2":
        convs = (d + 2 * N) * (k + 1) if k else 0
        return V * d + C * d + 2 * d + d + 1 + d * d + 2 * N * d + convs + 1 + d + 2 * d + \
            (d * d + d if cfg.gate else 0)
    if name == "mamba-s4d":
        return V * d + C * d + 2 * d * N + N + 4 * d + block
    R = math.ceil(d / 16)
    K = N if name == "mamba-dt" else d
    return V * d + C * d + d * N + d * (R + 2 * N) + R * K + K + 5 * d + block


@pytest.mark.parametrize("name,fields", CASES)
def test_parameter_counts_follow_the_formulas(name, fields):
    cfg = make_model_config(name, **fields)
    model = build(cfg, vocab_size=136, num_classes=128, length=100)
    assert model.parameters() == formula(name, cfg, 136, 128)
    assert sum(v.numel() for v in model.init([0, 1]).values()) == 2 * model.parameters()


def test_models_without_the_block_parts_keep_their_records_and_their_weights():
    plain = make_model_config("mamba", d=8, N=2)
    assert plain.to_dict() == {"name": "mamba", "d": 8, "N": 2, "pe": False, "pe_scale": "t/T"}
    assert make_model_config("mamba", d=8, N=2, conv=4).to_dict()["conv"] == 4
    assert make_model_config("mamba-s4d", d=8, N=2).to_dict()["gate"] is True
    # the block's weights are drawn after the others: the shared ones are the weights drawn without them
    a = build(plain, vocab_size=5, num_classes=5, length=3).init([7])
    b = build(make_model_config("mamba", d=8, N=2, conv=3, gate=True), vocab_size=5, num_classes=5, length=3).init([7])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert set(b) - set(a) == {"conv.weight", "conv.bias", "gate.weight", "gate.bias"}


def test_registry_names_and_bad_fields():
    assert {"mamba2", "mamba-s4d", "mamba-dt"} <= set(MODELS)
    with pytest.raises(ValueError, match="conv must be an integer ≥ 0"):
        make_model_config("mamba2", conv=-1)
    with pytest.raises(ValueError, match="gate must be True or False"):
        make_model_config("mamba", gate=1)


def simple_reference(p, tokens, V, learn_bc, learn_head=False, pair=False):
    """The study's simplified Mamba for one member, from its Sec. 2.2 with explicit loops."""
    B_, L = tokens.shape
    xhat = torch.zeros(B_, L, 2 * V, dtype=torch.float64)
    for b in range(B_):
        for t in range(L):
            if t > 0:
                xhat[b, t, tokens[b, t - 1]] = 1.0
            xhat[b, t, V + tokens[b, t]] = 1.0
    delta = F.softplus(xhat @ p["W_delta"].T)
    A = -torch.exp(p["A_log"])
    N = A.shape[1]
    Bt = (xhat @ p["B"] if pair else p["B"][tokens]) if learn_bc else torch.ones(B_, L, N, dtype=torch.float64)
    Ct = (xhat @ p["C"] if pair else p["C"][tokens]) if learn_bc else torch.ones(B_, L, N, dtype=torch.float64)
    y = recurrence(torch.exp(A * delta[..., None]), (delta * xhat)[..., None] * Bt[:, :, None, :], Ct)
    return y @ p["head"].T if learn_head else y[..., V:] - y[..., :V]


@pytest.mark.parametrize("N,learn_bc,length,learn_head,pair", [(1, False, 7, False, False), (3, True, 5, False, False),
                                                              (1, True, 1, False, False), (2, True, 6, True, False),
                                                              (2, True, 6, False, True)])
def test_simplified_mamba_member_equals_its_equations(N, learn_bc, length, learn_head, pair):
    V = 4
    cfg = make_model_config("mamba-simple", d=2 * V, N=N, learn_bc=learn_bc, learn_head=learn_head,
                            bc_of="pair" if pair else "token")
    model = build(cfg, vocab_size=V, num_classes=V, length=length)
    params = {k: v.requires_grad_(True) for k, v in model.init([3, 4], dtype=torch.float64).items()}
    tokens = torch.randint(0, V, (2, 3, length), generator=torch.Generator().manual_seed(N))
    logits = model.logits(params, tokens, {})
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grads = torch.autograd.grad((logits * weights).sum(), list(params.values()))
    for i in range(2):
        mine = {k: v.detach().clone().requires_grad_(True) for k, v in member(params, i).items()}
        ref = simple_reference(mine, tokens[i], V, learn_bc, learn_head, pair)
        torch.testing.assert_close(logits[i], ref, rtol=1e-10, atol=1e-12)
        ref_grads = torch.autograd.grad((ref * weights[i]).sum(), list(mine.values()))
        for g, rg in zip(grads, ref_grads):
            torch.testing.assert_close(g[i], rg, rtol=1e-9, atol=1e-12)
    assert model.parameters() == 4 * V * V + 2 * V * N + ((4 if pair else 2) * V * N if learn_bc else 0) + \
        (2 * V * V if learn_head else 0)


def test_simplified_mamba_refuses_sizes_it_cannot_read():
    with pytest.raises(ValueError, match=re.escape("needs d = 2|V| = 16")):
        build(make_model_config("mamba-simple", d=12), vocab_size=8, num_classes=8, length=5)
    with pytest.raises(ValueError, match="use learn_bc with N > 1"):
        make_model_config("mamba-simple", N=2)


def transformer_reference(p, tokens, cfg):
    """A Transformer member from torch.nn.functional: F.conv1d for the convolution, RoPE by complex rotation,
    causal softmax attention written out, pre-LN blocks."""
    d, H, L = cfg.d, cfg.heads, tokens.shape[1]
    x = p["embedding"][tokens]
    if cfg.position == "learned":
        x = x + p["position"][:L]
    if cfg.conv:
        w = p["conv.weight"]
        x = F.conv1d(x.transpose(1, 2), w[:, None, :], p["conv.bias"], padding=w.shape[1] - 1,
                     groups=d)[..., :L].transpose(1, 2)
    for layer in range(cfg.layers):
        pre = "" if layer == 0 else f"l{layer}."
        a = F.layer_norm(x, (d,), p[pre + "norm1.weight"], p[pre + "norm1.bias"])
        q, k, v = F.linear(a, p[pre + "attn.in_proj"], p[pre + "attn.in_bias"]).split(d, -1)
        q, k, v = (z.reshape(*z.shape[:2], H, d // H).transpose(1, 2) for z in (q, k, v))
        if cfg.position == "rope":
            w = d // H
            theta = torch.arange(L, dtype=torch.float64)[:, None] * 10000.0 ** (-torch.arange(0, w, 2) / w)
            turn = torch.polar(torch.ones_like(theta), theta)
            q, k = (torch.view_as_real(torch.view_as_complex(z.reshape(*z.shape[:-1], w // 2, 2).contiguous())
                                       * turn).flatten(-2) for z in (q, k))
        scores = (q @ k.transpose(-1, -2) / (d // H) ** 0.5).masked_fill(torch.ones(L, L).triu(1).bool(), -torch.inf)
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(*x.shape)
        x = x + F.linear(o, p[pre + "attn.out_proj"], p[pre + "attn.out_bias"])
        m = F.layer_norm(x, (d,), p[pre + "norm2.weight"], p[pre + "norm2.bias"])
        x = x + F.linear(F.gelu(F.linear(m, p[pre + "mlp.fc1"], p[pre + "mlp.fc1_bias"])), p[pre + "mlp.fc2"],
                         p[pre + "mlp.fc2_bias"])
    return F.linear(x, p["head"], p["head_bias"])


@pytest.mark.parametrize("fields", [dict(d=8, heads=2, layers=2, position="rope", conv=3),
                                    dict(d=6, layers=2, position="none"), dict(d=8, conv=4),
                                    dict(d=4, heads=2, position="rope")])
def test_transformer_options_member_equals_torch_functional(fields):
    cfg = make_model_config("transformer", **fields)
    model = build(cfg, vocab_size=9, num_classes=7, length=11)
    params = {k: v.requires_grad_(True) for k, v in model.init([1, 2], dtype=torch.float64).items()}
    tokens = torch.randint(0, 9, (2, 3, 11), generator=torch.Generator().manual_seed(3))
    logits = model.logits(params, tokens, model.buffers([11, 11], dtype=torch.float64))
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    grads = torch.autograd.grad((logits * weights).sum(), list(params.values()))
    for i in range(2):
        mine = {k: v.detach().clone().requires_grad_(True) for k, v in member(params, i).items()}
        ref = transformer_reference(mine, tokens[i], cfg)
        torch.testing.assert_close(logits[i], ref, rtol=1e-10, atol=1e-10)
        ref_grads = torch.autograd.grad((ref * weights[i]).sum(), list(mine.values()))
        for g, rg in zip(grads, ref_grads):                 # two layers of float64 in another order: ~1e-9
            torch.testing.assert_close(g[i], rg, rtol=1e-8, atol=1e-8)


def test_transformer_options_keep_the_one_layer_records_and_weights():
    base = make_model_config("transformer", d=8)
    assert base.to_dict() == {"name": "transformer", "d": 8, "heads": 1, "mlp": None}
    a = build(base, vocab_size=5, num_classes=5, length=4).init([3])
    b = build(make_model_config("transformer", d=8, layers=2, conv=2), vocab_size=5, num_classes=5, length=4).init([3])
    assert all(torch.equal(a[k], b[k]) for k in a)
    rope = build(make_model_config("transformer", d=8, position="rope"), vocab_size=5, num_classes=5, length=4)
    assert "position" not in rope.shapes() and rope.parameters(2) == rope.parameters(4)
    with pytest.raises(ValueError, match="head width d/heads = 3 must be even"):
        make_model_config("transformer", d=6, heads=2, position="rope")
