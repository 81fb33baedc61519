"""KEEP n-TH (Cor. 2) and INDUCTION HEADS (Lemma 3) constructions: exact accuracy, exact logits, the edge cases
where the printed proofs fail, float32 on the Triton path, and bad sizes."""
import math

import pytest
import torch
import torch.nn.functional as F

from kernels.scan import triton_available
from signals.tasks import induction_heads, induction_targets, keep_nth as keep_nth_task
from ssm import accuracy
from ssm.constructions import induction, keep_nth


pytestmark = pytest.mark.usefixtures("one_thread")


def _acc(model, batch):
    return accuracy(model, *batch, batch_size=256)["accuracy"]


# ---------------------------------------------------------------- KEEP n-TH

@pytest.mark.parametrize("V,n,T,compressed", [
    (128, 5, 50, False), (128, 5, 50, True), (5, 1, 7, False), (10, 100, 100, False), (40, 37, 100, True),
    (2, 3, 3, False), (1024, 2, 12, True)])
def test_keep_nth_exact_accuracy(V, n, T, compressed):
    model = keep_nth.build(V, n, compressed=compressed)
    assert _acc(model, keep_nth_task(300, T, n, V, seed=n + T)) == 1.0


def test_keep_nth_weights_do_not_depend_on_length():
    model = keep_nth.build(20, 4)
    for T in (4, 9, 200):
        assert _acc(model, keep_nth_task(50, T, 4, 20, seed=T)) == 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keep_nth_output_is_scaled_token(dtype):
    """y_t = SoftPlus(β)·e_{x_n} for t ≥ n: earlier tokens erased exactly, later ones add ≤ 1e−15."""
    V, n, T = 7, 3, 12
    model = keep_nth.build(V, n).to(dtype)
    b = keep_nth_task(20, T, n, V, seed=0)
    with torch.no_grad():
        logits = model(b.inputs)
    want = F.softplus(torch.tensor(keep_nth.BETA, dtype=torch.float64)) * F.one_hot(b.inputs[:, n - 1], V)
    torch.testing.assert_close(logits[:, n - 1:].double(), want[:, None, :].expand(20, T - n + 1, V),
                               rtol=1e-6, atol=1e-12)


def test_keep_nth_padded_sizes_still_exact():
    model = keep_nth.build(6, 2, d=11, N=3)
    assert model.sizes()["d"] == 11 and model.sizes()["N"] == 3
    assert _acc(model, keep_nth_task(100, 20, 2, 6, seed=1)) == 1.0


@pytest.mark.parametrize("kwargs,msg", [
    ({"vocab": 1}, "vocab must be an integer ≥ 2"),
    ({"n": 0}, "n must be an integer ≥ 1"),
    ({"n": 8, "length": 7}, "n must be at most the sequence length T=7"),
    ({"vocab": 10, "d": 10}, "d=10 is below the 11"),
    ({"vocab": 10, "compressed": True, "d": 2}, "d=2 is below the 3"),
    ({"N": 0}, "N=0 is below"),
    ({"vocab": 1025, "compressed": True}, "vocab ≤ 1024"),
])
def test_keep_nth_rejects_bad_sizes(kwargs, msg):
    args = {"vocab": 5, "n": 2, **kwargs}
    with pytest.raises(ValueError, match=msg):
        keep_nth.build(args.pop("vocab"), args.pop("n"), **args)


# ---------------------------------------------------------------- INDUCTION HEADS

@pytest.mark.parametrize("V", [5, 10, 20, 40])
@pytest.mark.parametrize("T", [50, 100])
@pytest.mark.parametrize("hard", [False, True])
def test_induction_exact_accuracy(V, T, hard):
    model = induction.build(V)
    assert model.sizes()["d"] == 2 * V and model.sizes()["N"] == V
    samples = 200 if V < 40 else 60
    assert _acc(model, induction_heads(samples, T, V, hard_prob=1.0 if hard else 0.0, seed=V + T)) == 1.0


@pytest.mark.parametrize("activation", ["relu", "silu", "none"])
def test_induction_logits_are_exact_in_float32(activation):
    """Logits are exactly e_{x_{j(t)+1}} (a 1 among 0's, blank ½) or (0, …, 0, ½): no decay leaks, in float32."""
    V, T = 6, 40
    model = induction.build(V, activation=activation)
    b = induction_heads(50, T, V, hard_prob=0.5, seed=2)
    with torch.no_grad():
        logits = model(b.inputs)
    want = F.one_hot(b.targets, V + 1).float()
    want[..., V] = 0.5
    if activation == "silu":                              # 1/a · a is 1 up to one rounding
        torch.testing.assert_close(logits, want, rtol=0, atol=1e-6)
    else:
        assert torch.equal(logits, want)


@pytest.mark.parametrize("x", [
    [1, 0, 2, 1, 3, 2, 1, 3],            # the paper's example (App. C.2), 0-based
    [2, 2, 2, 2, 0, 2, 2],               # repeated tokens: (v, v) pairs, j(t) = t − 1
    [0, 1, 2, 3, 4],                     # all first occurrences: all blank
    [3, 0, 1, 2, 1, 0, 3, 4],            # special token at the first position, queried at T − 1
    [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
])
def test_induction_edge_cases(x):
    model = induction.build(5)
    inputs = torch.tensor([x])
    with torch.no_grad():
        pred = model(inputs).argmax(-1)
    assert pred.tolist() == induction_targets(inputs, 5).tolist()


def _printed_induction(V):
    """Lemma 3 exactly as printed (eq. 102): Δ = SoftPlus(w_Δ [I | 0] x̂), no bias, W_o = [0 | I], no blank."""
    model = induction.build(V)
    with torch.no_grad():
        model.mixer.dt_proj.bias.zero_()
        model.mixer.dt_proj.weight[:V, :V] = induction.ALPHA * torch.eye(V)
        model.out.bias.zero_()
    return model


def test_printed_lemma3_fades_and_the_bias_fix_keeps_long_memories():
    """As printed, SoftPlus(0) = log 2 halves every other column per step: after ~150 steps the special token's
    memory underflows to 0 in float32 and the query at T − r is lost; with the Δ bias it is kept exactly."""
    V, T = 5, 400
    x = torch.tensor([[0] + [1, 2, 3, 4] * ((T - 2) // 4) + [1, 0, 2]])[:, :T].clone()
    x[0, T - 2] = 0                                        # v* = 0 at r = 1 and T − r = T − 1 (1-based)
    target = int(x[0, 1])                                  # x_{r+1}
    with torch.no_grad():
        printed = _printed_induction(V)(x)[0, T - 2, :V]
        fixed = induction.build(V)(x)[0, T - 2]
    assert float(printed.abs().max()) == 0.0               # faded to exactly 0: no token can be told
    assert int(fixed.argmax()) == target and float(fixed[target]) == 1.0


def test_printed_lemma3_has_no_blank():
    """As printed, a first occurrence reads y = 0: all |V| logits tie and argmax picks token 0."""
    with torch.no_grad():
        printed = _printed_induction(4)(torch.tensor([[3, 1]]))
        fixed = induction.build(4)(torch.tensor([[3, 1]]))
    assert torch.equal(printed[0, :, :4], torch.zeros(2, 4))
    assert fixed.argmax(-1).tolist() == [[4, 4]]


def test_induction_padded_sizes_still_exact():
    model = induction.build(5, d=13, N=8)
    assert _acc(model, induction_heads(100, 60, 5, hard_prob=0.5, seed=3)) == 1.0


@pytest.mark.parametrize("kwargs,msg", [
    ({"vocab": 1}, "vocab must be an integer ≥ 2"),
    ({"vocab": 10, "d": 19}, r"d=19 is below Lemma 3's d = 2\|V\| = 20"),
    ({"vocab": 10, "N": 9}, r"N=9 is below Lemma 3's N = \|V\| = 10"),
    ({"vocab": 4, "activation": "tanh"}, "activation must be one of"),
])
def test_induction_rejects_bad_sizes(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        induction.build(kwargs.pop("vocab"), **kwargs)


# ---------------------------------------------------------------- the Triton path (float32)

@pytest.mark.skipif(not triton_available(), reason="triton is not installed")
@pytest.mark.parametrize("which", ["keep_nth", "induction"])
def test_constructions_exact_on_triton_backend(which, monkeypatch):
    """The kernels that run on a GPU give the same exact answers in float32 (here through TRITON_INTERPRET)."""
    if not __import__("os").environ.get("TRITON_INTERPRET"):
        pytest.skip("needs TRITON_INTERPRET=1 on a machine without a GPU")
    if which == "keep_nth":
        model, b = keep_nth.build(6, 3), keep_nth_task(4, 12, 3, 6, seed=0)
    else:
        model, b = induction.build(5), induction_heads(4, 24, 5, hard_prob=1.0, seed=0)
    with torch.no_grad():
        x = model.embed(b.inputs)
        xh = model.conv(x) if model.conv is not None else x
        y_ref = model.mixer(xh, backend="reference")
        y_tri = model.mixer(xh, backend="triton")
        pred = model.out(y_tri.transpose(1, 2)).argmax(-1)
    torch.testing.assert_close(y_tri, y_ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(pred[b.mask], b.targets[b.mask])
    assert math.isfinite(float(y_tri.abs().max()))
