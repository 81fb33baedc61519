"""The MQAR constructions of Thm. 2-4 (App. C.1): exact accuracy, the theorems' sizes, edge cases, fixes, bad input."""
from __future__ import annotations

import math

import click
import pytest
import torch
from click.testing import CliRunner

from cli.main import approx
from signals.tasks import IGNORE, mqar as mqar_task
from ssm.constructions import mqar, mqar_eval

CASES = [(v, c) for v in mqar.VARIANTS for c in (False, True)]
# A JL dimension at which every step-2 model of seed 0 is exact on the sizes below (docs/constructions-mqar.md).
P_SAFE = 128


def _sizes(variant, compressed, kappa):
    return mqar_eval.jl_sizes(variant, kappa, P_SAFE) if compressed else {}


def _accuracy(model, batch, engine="scan"):
    return mqar_eval.score(model, batch.inputs, batch.targets, batch.mask, engine=engine)["accuracy"]


@pytest.mark.parametrize("variant,compressed", CASES)
def test_exact_on_generated_data_through_the_scan(variant, compressed):
    kappa, vocab, length = 4, 64, 50
    model, _ = mqar.build(variant, kappa, vocab, length, compressed, **_sizes(variant, compressed, kappa))
    assert _accuracy(model, mqar_task(64, length, kappa, vocab, seed=7)) == 1.0


@pytest.mark.parametrize("variant", mqar.VARIANTS)
def test_exact_at_default_sizes_larger_grid(variant):
    """Step 1 at κ = 16, |V| = 128, T = 100 and step 2 (Lem. 4's d; Mamba-2 at P_SAFE) at κ = 8, |V| = 64."""
    model, _ = mqar.build(variant, 16, 128, 100)
    assert _accuracy(model, mqar_task(300, 100, 16, 128, seed=3), "lambda0") == 1.0
    model, _ = mqar.build(variant, 8, 64, 50, True, **(_sizes(variant, True, 8) if variant == "mamba2" else {}))
    assert _accuracy(model, mqar_task(300, 50, 8, 64, seed=4), "lambda0") == 1.0


@pytest.mark.parametrize("variant,compressed", CASES)
def test_closed_form_equals_scan(variant, compressed):
    sizes = mqar_eval.jl_sizes(variant, 4, 12) if compressed else {}
    model, _ = mqar.build(variant, 4, 16, 20, compressed, seed=2, dtype=torch.float64, **sizes)
    batch = mqar_task(8, 20, 4, 16, seed=5)
    a = mqar_eval.forward(model, batch.inputs, "scan")
    b = mqar_eval.forward(model, batch.inputs, "lambda0")
    torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-9 * float(a.abs().max()))
    torch.testing.assert_close(mqar_eval.forward(model, batch.inputs, "lambda0", batch.mask), a[batch.mask],
                               rtol=1e-12, atol=1e-9 * float(a.abs().max()))


def test_closed_form_rejects_a_decaying_state():
    model, _ = mqar.build("mamba", 4, 16, 20)
    with torch.no_grad():
        model.mixer.A.fill_(-1.0)
    with pytest.raises(ValueError, match="Λ = 0"):
        mqar_eval.forward(model, mqar_task(2, 20, 4, 16).inputs, "lambda0")


@pytest.mark.parametrize("kappa,vocab", [(4, 64), (8, 128), (16, 64), (5, 7)])
def test_sizes_are_the_theorems(kappa, vocab):
    want = {"mamba": (kappa + vocab, kappa), "mamba2": (kappa + vocab, kappa), "s4d": (kappa * vocab, 1)}
    for variant, (d, N) in want.items():
        model, sizes = mqar.build(variant, kappa, vocab, 3 * kappa)
        assert (sizes["d"], sizes["N"]) == (d, N) == (sizes["bound_d"], sizes["bound_N"])
        assert sizes["parameters"] == sum(p.numel() for p in model.parameters())
    p_v, p_k, p_s = mqar.jl_dim(vocab), mqar.jl_dim(kappa), mqar.jl_dim(vocab + 1)
    assert [mqar.build(v, kappa, vocab, 3 * kappa, True)[1]["d"] for v in mqar.VARIANTS] == \
        [kappa + p_v, p_k + p_v, kappa * p_s]
    assert [mqar.build(v, kappa, vocab, 3 * kappa, True)[1]["N"] for v in mqar.VARIANTS] == [kappa, p_k, 1]
    assert mqar.build("mamba2", kappa, vocab, 3 * kappa, True, d=30, N=10)[1]["N"] == 10


def test_jl_matrices():
    assert mqar.jl_dim(128) == math.ceil(16 * math.log(256))
    M = mqar.rademacher(40, 65, torch.Generator().manual_seed(0))
    torch.testing.assert_close(M.norm(dim=0), torch.ones(65, dtype=M.dtype))
    R = mqar._rotate_to_ones(M)
    torch.testing.assert_close(R[:, -1], torch.full((40,), 40 ** -0.5, dtype=M.dtype))
    torch.testing.assert_close(R.T @ R, M.T @ M)                          # a rotation keeps inner products


def _edge_batch():
    """κ = 4, |V| = 8; key i ↦ i, value j ↦ 4 + j. Values: k0→5, k1→1 (value index = key index), k2→3, k3→3
    (one value for two keys). Queries: right after the last pair, adjacent (k0, k2) and (k1, k0, k3) runs whose
    earlier key holds another value, a query at the last position."""
    K, V = 4, (lambda j: 4 + j)
    ctx = [2, V(3), 0, V(5), 3, V(3), 1, V(1)]
    value = {0: 5, 1: 1, 2: 3, 3: 3}
    seqs = [ctx + [3, V(7), 0, 2, V(0), V(6), 1],
            ctx + [V(2), 1, 0, 3, V(5), V(5), 2]]
    inputs = torch.tensor(seqs)
    mask = inputs < K
    mask[:, :len(ctx)] = False
    targets = torch.full_like(inputs, IGNORE)
    for s, row in enumerate(seqs):
        for t, tok in enumerate(row):
            if mask[s, t]:
                targets[s, t] = value[tok]
    return inputs, targets, mask


@pytest.mark.parametrize("variant,compressed", CASES)
def test_edge_cases(variant, compressed):
    inputs, targets, mask = _edge_batch()
    assert int(mask.sum()) == 8 and mask[0, -1]
    model, _ = mqar.build(variant, 4, 8, 15, compressed, **_sizes(variant, compressed, 4))
    pred = mqar_eval.forward(model, inputs, "scan", mask).argmax(-1)
    assert pred.tolist() == targets[mask].tolist()


@pytest.mark.parametrize("variant", mqar.VARIANTS)
def test_step2_as_printed_fails_and_the_fix_is_exact(variant):
    """Fixes 1-3 of the module docstring: without them step 2 is far from exact on the same data."""
    batch = mqar_task(200, 50, 8, 64, seed=1)
    sizes = _sizes(variant, True, 8)
    printed, _ = mqar.build(variant, 8, 64, 50, True, printed=True, **sizes)
    fixed, _ = mqar.build(variant, 8, 64, 50, True, **sizes)
    assert _accuracy(printed, batch, "lambda0") < 0.5
    assert _accuracy(fixed, batch, "lambda0") == 1.0


def test_broken_weights_do_not_reach_one():
    batch = mqar_task(100, 50, 8, 64, seed=2)
    model, _ = mqar.build("mamba", 8, 64, 50)
    with torch.no_grad():
        model.mixer.B_proj.weight[:, 0] = 0            # key 0 no longer gets a state column
    assert _accuracy(model, batch) < 1.0
    model, _ = mqar.build("mamba2", 8, 64, 50)
    with torch.no_grad():
        model.mixer.conv_B.weight[:, 0] = 0            # conv_B keeps x_t instead of shifting to x_{t−1}
        model.mixer.conv_B.weight[:, 1] = 1
    assert _accuracy(model, batch, "lambda0") < 1.0
    model, _ = mqar.build("s4d", 8, 64, 50)
    with torch.no_grad():
        model.gate.proj.weight[:64] = 0                # the gate no longer opens key 0's block
    assert _accuracy(model, batch, "lambda0") < 1.0
    for variant in mqar.VARIANTS:                      # JL dimension far too small
        model, _ = mqar.build(variant, 8, 64, 50, True, **mqar_eval.jl_sizes(variant, 8, 2))
        assert _accuracy(model, batch, "lambda0") < 1.0


def test_a_key_queried_twice_is_ill_posed():
    """After query k_0 the noise value v_6 forms a pair (k_0, v_6) stored like the context pair (k_0, v_5): at
    the second query of k_0 the Thm. 2 read-out scores both values equally (the format excludes this input)."""
    model, _ = mqar.build("mamba", 4, 8, 12)
    seq = torch.tensor([[0, 4 + 5, 1, 4 + 1, 2, 4 + 2, 3, 4 + 3, 0, 4 + 6, 4 + 0, 0]])
    logits = mqar_eval.forward(model, seq)[0, -1]
    assert logits[5] == logits[6] == logits.max()


@pytest.mark.parametrize("kwargs,match", [
    (dict(variant="mamba", kappa=8, vocab=64, length=50, d=71), "d=71 is below the Thm. 2 bound"),
    (dict(variant="mamba2", kappa=8, vocab=64, length=50, d=71), "d=71 is below the Thm. 3"),
    (dict(variant="s4d", kappa=8, vocab=64, length=50, d=511), "d=511 differs"),
    (dict(variant="s4d", kappa=8, vocab=64, length=50, compressed=True, d=100), "d=100 is not a multiple"),
    (dict(variant="mamba", kappa=8, vocab=64, length=50, compressed=True, d=8), "d=8 leaves no value"),
    (dict(variant="mamba2", kappa=8, vocab=64, length=50, compressed=True, d=10, N=10), "d=10 leaves"),
    (dict(variant="mamba", kappa=8, vocab=64, length=50, N=3), "N=3"),
    (dict(variant="mamba", kappa=65, vocab=64, length=200), "kappa=65 exceeds vocab=64"),
    (dict(variant="mamba", kappa=32, vocab=64, length=50), "length=50 is below 3·kappa = 96"),
    (dict(variant="gru", kappa=4, vocab=64, length=50), "'gru'"),
    (dict(variant="mamba", kappa=0, vocab=64, length=50), "kappa must be"),
])
def test_bad_sizes_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mqar.build(**kwargs)


@pytest.mark.parametrize("args,needle", [
    (["--kappa", "8", "--vocab", "64", "--d", "71"], "d=71"),
    (["--kappa", "80", "--vocab", "64", "--length", "300"], "kappa=80"),
    (["--kappa", "8", "--variant", "s4d", "--compressed", "--d", "100"], "d=100"),
])
def test_cli_bad_sizes_exit_2(args, needle):
    from cli.main import main
    runner = CliRunner()
    result = runner.invoke(approx, ["construct", "mqar", *args, "--samples", "10"], standalone_mode=False,
                           catch_exceptions=True)
    assert isinstance(result.exception, click.ClickException) and needle in str(result.exception)
    with pytest.raises(SystemExit) as exc:
        main(["construct", "mqar", *args, "--samples", "10"])
    assert exc.value.code == 2
