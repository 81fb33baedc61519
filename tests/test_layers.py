"""SSM layers and the 1-layer model against float64 step-by-step recomputations written from the paper's equations
(eq. 6, 14b-14g, 15, Prop. 1), independent of the scan engine."""
import math

import pytest
import torch
import torch.nn.functional as F

import ssm
import ssm.layers.mixers as layers
from ssm import (Gate, Mamba2Mixer, MambaDeltaTMixer, OneLayerModel, S4DMixer, S6Mixer, ShortConv,
                 TimeRecovery)


pytestmark = pytest.mark.usefixtures("one_thread")


SHAPES = [(1, 1, 1, 1), (2, 3, 1, 5), (3, 4, 5, 7), (2, 5, 3, 1), (1, 2, 2, 9)]   # (batch, d, N, L)


def randomize(module, seed, scale=0.5):
    """Fill every parameter with random values (complex where the parameter is); keep Λ's real part ≤ 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float64) * scale
            if p.is_complex():
                r = torch.complex(r, torch.randn(p.shape, generator=g, dtype=torch.float64) * scale)
            if name.split(".")[-1] == "A":
                r = torch.complex(-r.real.abs(), r.imag) if p.is_complex() else -r.abs()
            p.copy_(r)
    return module


def lin(W, b, x_t):
    """Linear map of one position: W (out, in), b (out,), x_t (batch, in) → (batch, out)."""
    return x_t @ W.T + b


def conv_ref(weight, bias, x, sigma):
    """x̂_t = σ(Σ_k weight[:, k] x_{t−K+1+k} + bias), zero left padding. x (batch, C, L)."""
    K = weight.shape[1]
    out = torch.zeros_like(x)
    for t in range(x.shape[2]):
        acc = bias[None, :].clone().expand(x.shape[0], -1).clone()
        for k in range(K):
            s = t - K + 1 + k
            if s >= 0:
                acc = acc + weight[None, :, k] * x[:, :, s]
        out[:, :, t] = acc
    return sigma(out)


def s6_ref(m, x):
    """eq. (14c-g) left: Δ_t ∈ R^d, h_t = e^{Λ⊙(Δ_t⊗1)} ⊙ h_{t−1} + (Δ_t ⊙ x_t) ⊗ B_t, y_t = h_t C_t."""
    batch, d, L = x.shape
    h = torch.zeros(batch, d, m.N, dtype=torch.float64)
    ys = []
    for t in range(L):
        xt = x[:, :, t]
        dt = F.softplus(lin(m.dt_proj.weight, m.dt_proj.bias, xt))            # (batch, d)
        Bt = lin(m.B_proj.weight, m.B_proj.bias, xt)                          # (batch, N)
        Ct = lin(m.C_proj.weight, m.C_proj.bias, xt)
        h = torch.exp(m.A[None] * dt[:, :, None]) * h + (dt * xt)[:, :, None] * Bt[:, None, :]
        ys.append(torch.einsum("bdn,bn->bd", h, Ct))
    return torch.stack(ys, -1)


def dt_ref(m, x):
    """eq. (15): Δ_t ∈ R^N, h_t = e^{Λ⊙(1⊗Δ_t)} ⊙ h_{t−1} + x_t ⊗ B_t, y_t = h_t C_t."""
    batch, d, L = x.shape
    h = torch.zeros(batch, d, m.N, dtype=torch.float64)
    ys = []
    for t in range(L):
        xt = x[:, :, t]
        dt = F.softplus(lin(m.dt_proj.weight, m.dt_proj.bias, xt))            # (batch, N)
        Bt = lin(m.B_proj.weight, m.B_proj.bias, xt)
        Ct = lin(m.C_proj.weight, m.C_proj.bias, xt)
        h = torch.exp(m.A[None] * dt[:, None, :]) * h + xt[:, :, None] * Bt[:, None, :]
        ys.append(torch.einsum("bdn,bn->bd", h, Ct))
    return torch.stack(ys, -1)


def mamba2_ref(m, x):
    """eq. (14b-g) right: scalar λ and Δ_t, three independent convolutions."""
    batch, d, L = x.shape
    proj = lambda layer: torch.einsum("oi,bil->bol", layer.weight, x) + layer.bias[None, :, None]
    sig = m.conv_u.sigma
    xh = conv_ref(m.conv_u.weight, m.conv_u.bias, proj(m.u_proj), sig)
    Bs = conv_ref(m.conv_B.weight, m.conv_B.bias, proj(m.B_proj), sig)
    Cs = conv_ref(m.conv_C.weight, m.conv_C.bias, proj(m.C_proj), sig)
    h = torch.zeros(batch, d, m.N, dtype=torch.float64)
    ys = []
    for t in range(L):
        dt = F.softplus(lin(m.dt_proj.weight, m.dt_proj.bias, x[:, :, t]))[:, 0]   # (batch,)
        h = torch.exp(m.A * dt)[:, None, None] * h + (dt[:, None] * xh[:, :, t])[:, :, None] * Bs[:, None, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, Cs[:, :, t]))
    return torch.stack(ys, -1)


def s4d_ref(m, x):
    """eq. (6): h_t = e^{Λ} ⊙ h_{t−1} + x_t ⊗ B, y_t = Re(h_t C)."""
    batch, d, L = x.shape
    h = torch.zeros(batch, d, m.N, dtype=torch.complex128 if m.complex_ else torch.float64)
    ys = []
    for t in range(L):
        h = torch.exp(m.A)[None] * h + x[:, :, t, None] * m.B[None, None, :]
        y = (h * m.C[None, None, :]).sum(-1)
        ys.append(y.real if y.is_complex() else y)
    return torch.stack(ys, -1)


def _f64(module):
    module = module.double()
    for name, p in module.named_parameters():       # .double() leaves complex64 parameters alone
        if p.dtype == torch.complex64:
            p.data = p.data.to(torch.complex128)
    return module


CASES = [
    ("s6", lambda d, N: S6Mixer(d, N), s6_ref, "channel"),
    ("mamba_dt", lambda d, N: MambaDeltaTMixer(d, N), dt_ref, "state"),
    ("mamba2_silu", lambda d, N: Mamba2Mixer(d, N, conv_kernel=3, conv_activation="silu"), mamba2_ref, "scalar"),
    ("mamba2_relu_k1", lambda d, N: Mamba2Mixer(d, N, conv_kernel=1, conv_activation="relu"), mamba2_ref,
     "scalar"),
    ("s4d_complex", lambda d, N: S4DMixer(d, N, complex_=True), s4d_ref, "scalar"),
    ("s4d_real", lambda d, N: S4DMixer(d, N, complex_=False), s4d_ref, "scalar"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,make,ref,mode", CASES, ids=[c[0] for c in CASES])
def test_mixer_matches_stepwise_float64(name, make, ref, mode, shape):
    batch, d, N, L = shape
    m = randomize(_f64(make(d, N)), seed=hash((name, shape)) % 1000)
    x = torch.randn(batch, d, L, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        y = m(x)
        want = ref(m, x)
    assert y.shape == (batch, d, L) and y.dtype == torch.float64
    torch.testing.assert_close(y, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,make,ref,mode", CASES, ids=[c[0] for c in CASES])
def test_mixer_float32_close_to_float64(name, make, ref, mode):
    m64 = randomize(_f64(make(4, 3)), seed=3)
    m32 = make(4, 3)
    m32.load_state_dict({k: v.to(m32.state_dict()[k].dtype) for k, v in m64.state_dict().items()})
    x = torch.randn(2, 4, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(m32(x.float()).double(), ref(m64, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,make,ref,mode", CASES, ids=[c[0] for c in CASES])
def test_mixer_calls_scan_engine_with_its_delta_mode(name, make, ref, mode, monkeypatch):
    calls = []
    real = layers.selective_scan

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(layers, "selective_scan", spy)
    m = make(3, 2)
    with torch.no_grad():
        m(torch.randn(1, 3, 4))
    assert len(calls) == 1
    assert calls[0]["delta_mode"] == mode
    assert calls[0]["backend"] == "auto"
    assert calls[0]["input_delta"] is (name != "mamba_dt")


def test_mixer_last_state_matches_reference():
    m = randomize(_f64(MambaDeltaTMixer(3, 2)), seed=5)
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    with torch.no_grad():
        y, h = m(x, return_last_state=True)
    assert h.shape == (2, 3, 2)
    p = m.ssm_params(x)
    torch.testing.assert_close((h * p["C"][:, None, :, -1]).sum(-1), y[:, :, -1])


@pytest.mark.parametrize("K,act", [(1, "none"), (2, "relu"), (4, "silu"), (5, "silu")])
@pytest.mark.parametrize("L", [1, 3, 8])
def test_short_conv_is_causal_and_matches_sum(K, act, L):
    c = randomize(ShortConv(3, K, act).double(), seed=K)
    x = torch.randn(2, 3, L, dtype=torch.float64)
    sig = {"none": lambda z: z, "relu": torch.relu, "silu": F.silu}[act]
    with torch.no_grad():
        torch.testing.assert_close(c(x), conv_ref(c.weight, c.bias, x, sig))
        x2 = x.clone()
        x2[:, :, -1] += 1.0                                  # the future never leaks into the past
        torch.testing.assert_close(c(x2)[:, :, :-1], c(x)[:, :, :-1])


def test_short_conv_kernel2_is_paper_eq54():
    """x̂_t = ReLU(c0 ⊙ x_{t−1} + c1 ⊙ x_t − b), x_0 = 0 (eq. 54) with weight[:, 0] = c0, weight[:, 1] = c1."""
    c = ShortConv(1, 2, "relu")
    with torch.no_grad():
        c.weight.copy_(torch.tensor([[1.0, 2.0]]))
        c.bias.fill_(-1.0)
    x = torch.tensor([[[2.0, 1.0, 0.0, 3.0]]])
    assert c(x).tolist() == [[[3.0, 3.0, 0.0, 5.0]]]


def test_gate_is_eq14g():
    gate = randomize(Gate(3, "silu").double(), seed=2)
    x, y = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)
    want = F.silu(torch.einsum("oi,bil->bol", gate.proj.weight, x) + gate.proj.bias[None, :, None]) * y
    with torch.no_grad():
        torch.testing.assert_close(gate(x, y), want)


@pytest.mark.parametrize("L", [1, 5, 64])
def test_time_recovery_prop1(L):
    t = TimeRecovery(normalize=False)(2, L)
    assert torch.equal(t, torch.arange(1, L + 1, dtype=torch.float32).expand(2, L))
    tau = TimeRecovery()(1, L, dtype=torch.float64)
    torch.testing.assert_close(tau[0], torch.arange(1, L + 1, dtype=torch.float64) / L)


@pytest.mark.parametrize("mixer", ssm.MIXERS)
@pytest.mark.parametrize("pe", [False, True])
def test_model_composes_its_layers(mixer, pe):
    torch.manual_seed(0)
    m = _f64(OneLayerModel(7, 6, 3, num_classes=5, mixer=mixer, conv_kernel=2, gate=True, positional_encoding=pe))
    tokens = torch.randint(0, 7, (3, 9))
    with torch.no_grad():
        logits = m(tokens)
        x = m.embedding.weight[tokens]                                      # (batch, L, d or d − 1)
        if pe:
            x = torch.cat([x, torch.arange(1, 10, dtype=torch.float64).expand(3, 9)[..., None]], -1)
        x = x.transpose(1, 2)
        xh = x if mixer == "mamba2" else conv_ref(m.conv.weight, m.conv.bias, x, F.silu)
        y = m.gate(x, m.mixer(xh))
        want = torch.einsum("cd,bdl->blc", m.out.weight, y) + m.out.bias
    assert logits.shape == (3, 9, 5)
    torch.testing.assert_close(logits, want)
    assert (m.conv is None) == (mixer == "mamba2")


def test_model_parameter_count_and_options():
    m = OneLayerModel(10, 4, 2, mixer="mamba", conv_kernel=None, gate=False, positional_encoding=True)
    # embedding 10×3, S6: A 4×2, dt 4×4+4, B 4×2+2, C 4×2+2, output 4×10+10
    assert m.num_parameters() == 30 + 8 + 20 + 10 + 10 + 50
    assert m.conv is None and m.gate is None
    assert m.sizes() == {"d": 4, "N": 2, "parameters": 128}
    s4d = OneLayerModel(3, 2, 2, mixer="s4d", conv_kernel=None, gate=False, s4d_complex=True)
    assert s4d.num_parameters() == 6 + 2 * (4 + 2 + 2) + 9


@pytest.mark.parametrize("kwargs,msg", [
    ({"mixer": "rnn"}, "mixer must be one of"),
    ({"d": 0}, "d must be an integer ≥ 1"),
    ({"N": 1.5}, "N must be an integer ≥ 1"),
    ({"d": 1, "positional_encoding": True}, "d must be at least 2"),
    ({"mixer": "mamba2", "conv_kernel": None}, "needs conv_kernel"),
    ({"conv_activation": "tanh"}, "activation must be one of"),
])
def test_model_rejects_bad_sizes(kwargs, msg):
    args = {"vocab_size": 5, "d": 4, "N": 2, **kwargs}
    with pytest.raises(ValueError, match=msg):
        OneLayerModel(args.pop("vocab_size"), args.pop("d"), args.pop("N"), **args)


@pytest.mark.parametrize("tokens,msg", [
    (torch.tensor([[0, 5]]), r"tokens must lie in \[0, 5\)"),
    (torch.tensor([[-1, 0]]), r"tokens must lie in"),
    (torch.tensor([0, 1]), "shape"),
    (torch.tensor([[0.0, 1.0]]), "integers"),
])
def test_model_rejects_bad_tokens(tokens, msg):
    with pytest.raises(ValueError, match=msg):
        OneLayerModel(5, 4, 2)(tokens)


def test_mixer_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(batch, 4, L\)"):
        S6Mixer(4, 2)(torch.randn(1, 3, 5))


def test_softplus_saturation_is_finite():
    """Large pre-activations (the constructions use |w·x| up to ~1e4) give finite Δ and exact 0/1 decays."""
    m = MambaDeltaTMixer(2, 2)
    with torch.no_grad():
        m.dt_proj.weight.zero_()
        m.dt_proj.bias.copy_(torch.tensor([1e4, -1e4]))
        m.B_proj.weight.zero_()
        m.B_proj.bias.fill_(1.0)
        m.C_proj.weight.zero_()
        m.C_proj.bias.copy_(torch.tensor([0.0, 1.0]))
        m.A.fill_(-1.0)
        y = m(torch.ones(1, 2, 5))
        delta = m.ssm_params(torch.ones(1, 2, 1))["delta"]
    assert torch.isfinite(y).all()
    assert y[0, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]           # state 1 keeps (Δ ≈ 0), state 0 is erased
    assert math.isfinite(float(delta.max()))
