"""Sensitivity analysis (Sec. 4.2, App. B): autograd through the scan against the closed form of Lemma 1 (eqs. 35-38),
decay rates, Lemma 2, the selective forgetting of Fig. 1, softmax attention's bound (45), and the CLI."""
import json
import math
import os

import numpy as np
import pytest
import torch

from conftest import run_cli as run
from ssm.layers import Mamba2Mixer, MambaDeltaTMixer, S4DMixer, S6Mixer
from ssm.sensitivity import (Attention, TokenSSM, attention_experiment, attention_jacobian_autograd,
                             attention_jacobian_closed_form, build_layer, closed_form_factors, decay_experiment,
                             fit_log_linear, forgetting_experiment, jacobian_autograd, jacobian_closed_form,
                             lemma2_experiment, max_relative_error, random_input, token_ssm)

TOL = 1e-6   # relative agreement of autograd and the closed form in float64 (docs/sensitivity.md)


def random_token_ssm(kind, complex_, seed, D=2, N=3, d_in=3):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    A = -torch.rand(D, N, generator=g, dtype=torch.float64) * 0.6
    if complex_:
        A = A + 1j * r(D, N)
    K = {"none": 0, "channel": D, "state": N, "scalar": 1}[kind]
    return TokenSSM(A=A, delta_kind=kind, W_delta=r(K, d_in) if K else None, b_delta=r(K) if K else None,
                    W_B=r(N, d_in), b_B=r(N), W_C=r(N, d_in), b_C=r(N), W_u=r(D, d_in), b_u=r(D),
                    act_u="silu", act_C="none" if complex_ else "relu", input_delta=kind != "state")


@pytest.mark.parametrize("target", ["state", "output"])
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("kind", ["none", "channel", "state", "scalar"])
def test_autograd_matches_closed_form(kind, complex_, target):
    ssm = random_token_ssm(kind, complex_, seed=10 * ["none", "channel", "state", "scalar"].index(kind) + complex_)
    x = random_input(9, ssm.d_in, seed=3)
    Ja = jacobian_autograd(ssm, x, target=target)
    Jc = jacobian_closed_form(ssm, x, target=target)
    assert Ja.shape == Jc.shape
    assert Ja.shape[:2] == (9, 9)
    assert max_relative_error(Ja, Jc) < TOL
    # causality: nothing depends on a future input
    t, j = torch.triu_indices(9, 9, 1)
    assert Ja[t, j].abs().max() == 0


@pytest.mark.parametrize("make", [lambda: S4DMixer(2, 3), lambda: S4DMixer(2, 3, complex_=False),
                                  lambda: S6Mixer(2, 3), lambda: MambaDeltaTMixer(2, 3),
                                  lambda: Mamba2Mixer(2, 3, conv_kernel=1),
                                  lambda: Mamba2Mixer(2, 3, conv_kernel=1, conv_activation="relu")],
                         ids=["s4d", "s4d-real", "s6", "mamba_dt", "mamba2-silu", "mamba2-relu"])
def test_mixers_of_ssm_layers(make):
    torch.manual_seed(1)
    mixer = make()
    x = random_input(8, mixer.d, seed=2)
    # the extracted TokenSSM computes what the mixer computes
    y_mixer = mixer(x.T[None].float()).double()
    y_token = token_ssm(mixer)(x.T[None])
    assert torch.allclose(y_mixer, y_token, atol=1e-5)
    for target in ("state", "output"):
        assert max_relative_error(jacobian_autograd(mixer, x, target=target),
                                  jacobian_closed_form(mixer, x, target=target)) < TOL


def test_mamba2_with_a_convolution_has_no_token_wise_closed_form():
    with pytest.raises(ValueError, match="kernel size 4"):
        token_ssm(Mamba2Mixer(2, 3, conv_kernel=4))


def test_the_check_can_fail():
    """Perturbed closed forms fail the 1e-6 check: a 1e-5 relative change of one entry, and the formula without the
    ∂Λ̄_j/∂x_j term of eq. (38) (the LTI formula applied to S6), and without the readout term ∂C_j/∂x_j h_j."""
    torch.manual_seed(0)
    ssm = token_ssm(S6Mixer(2, 3))
    x = random_input(10, 2, seed=5)
    Ja = jacobian_autograd(ssm, x)
    Jc = jacobian_closed_form(ssm, x)
    assert max_relative_error(Ja, Jc) < TOL
    bumped = Jc.clone()
    bumped[6, 2, 1, 1, 0] *= 1 + 1e-5
    assert max_relative_error(Ja, bumped) > TOL
    f = closed_form_factors(ssm, x)
    no_decay_term = f["P"][..., None] * f["dm"][None]
    assert max_relative_error(Ja, no_decay_term) > 1e-2
    Jy = jacobian_autograd(ssm, x, target="output")
    no_readout = torch.einsum("tn,tjdnk->tjdk", f["C"], Jc)
    assert max_relative_error(Jy, no_readout) > 1e-2


def test_retention_factor_is_eq_37():
    """|∂h_t/∂x_j| / |G_j| = exp(−λ Σ_{r=j+1}^t Δ_r), recomputed by an explicit product."""
    ssm = token_ssm(S6Mixer(1, 2))
    x = random_input(6, 1, seed=0)
    f = closed_form_factors(ssm, x)
    delta = torch.nn.functional.softplus(x @ ssm.W_delta.T + ssm.b_delta)[:, 0]
    for t, j in [(5, 1), (3, 3), (4, 0)]:
        prod = math.prod(math.exp(float(ssm.A[0, 1]) * float(delta[r])) for r in range(j + 1, t + 1))
        assert f["P"][t, j, 0, 1].item() == pytest.approx(prod, rel=1e-12)


def test_fit_log_linear():
    s = np.arange(20.0)
    r, a, n = fit_log_linear(3.0 * np.exp(-0.7 * s), s)
    assert r == pytest.approx(0.7, rel=1e-12) and a == pytest.approx(math.log(3.0)) and n == 20
    assert math.isnan(fit_log_linear([1.0, 0.0], [0, 1])[0])   # underflow/zeros are left out


def test_s4d_rate_matches_lambda():
    """Lemma 1 for S4D: the rate fitted to the autograd sensitivities is λ = −Re Λ, per state, within 1%."""
    mixer = build_layer("s4d", 2, 4, seed=0)
    res = decay_experiment(mixer, random_input(48, 2, seed=1), j=1)
    m = res["metrics"]
    assert m["max_rel_err_state"] < TOL and m["max_rel_err_output"] < TOL
    assert m["components_fitted"] == 8
    assert m["rate_rel_dev_max"] < 0.01
    lams = sorted(c["lambda"] for c in res["components"])
    assert lams[0] < 0.9 * lams[-1]                     # several different rates are tested


def test_s6_rate_is_lambda_times_mean_delta():
    """S6: log-sensitivity is linear in the Δ-time Σ Δ_r with slope λ (eq. 37); per step the rate is ≈ λ·mean Δ."""
    res = decay_experiment(build_layer("s6", 2, 3, seed=0), random_input(48, 2, seed=1), j=3)
    m = res["metrics"]
    assert m["max_rel_err_state"] < TOL
    assert m["lambda_rel_dev_max"] < 1e-9
    assert m["rate_rel_dev_max"] < 0.05     # regression slope vs mean: equal only on average


def test_lemma2_bound_holds_and_s4d_falls_below():
    for kind in ("s6", "mamba2"):
        m = lemma2_experiment(kind, length=40, j=10)["metrics"]
        assert m["max_rel_err_state"] < TOL
        assert m["bound_holds"] and m["min_ratio"] >= 1
        assert m["decay_term"] == 0.0                    # Δ is driven by the marker channel only
        assert m["retention_final"] > math.exp(-m["c_after_j"]) * (1 - 1e-12)
        assert m["s4d_first_below_bound"] is not None     # the same λ without selectivity violates it


def test_selective_forgetting_keeps_only_the_nth_token():
    m = forgetting_experiment(length=24, n=5, seed=3)["metrics"]
    assert m["max_rel_err_state"] < TOL
    assert m["kept_sensitivity"] > 1
    assert m["max_other_over_kept"] < 1e-12
    assert m["mean_e_decay_up_to_n"] < 1e-12 and m["mean_e_decay_after_n"] > 1 - 1e-9
    assert m["s4d_min_other_over_kept"] > 0.5             # S4D weighs every token alike


def test_attention_matches_eq44_and_bound45():
    m = attention_experiment(length=48, d=3, seed=0, scale=0.3)["metrics"]
    assert m["max_rel_err"] < TOL
    assert m["bound_holds"]
    assert abs(m["power_fit"] - 1.0) < 0.2
    att = Attention.random(3, 0)
    x = random_input(12, 3, 1)
    Ja = attention_jacobian_autograd(att, x)
    Jc = attention_jacobian_closed_form(att, x)
    strict = torch.ones(12, 12, dtype=torch.bool).tril(-1)
    wrong = Jc - (torch.softmax(att.scores(x), -1) * strict)[..., None, None] * att.W_V   # without W_V's term
    assert max_relative_error(Ja[strict], wrong[strict]) > 1e-2


def test_bad_arguments():
    ssm = token_ssm(S6Mixer(2, 3))
    with pytest.raises(ValueError, match="d_in=2"):
        jacobian_closed_form(ssm, torch.zeros(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-positive"):
        TokenSSM(A=torch.ones(1, 1), delta_kind="none", b_B=torch.ones(1), b_C=torch.ones(1))
    with pytest.raises(ValueError, match="length"):
        random_input(0, 2, 0)
    with pytest.raises(ValueError, match="entries"):
        jacobian_autograd(ssm, torch.zeros(3000, 2, dtype=torch.float64))


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "0") in ("", "0"), reason="needs TRITON_INTERPRET=1 on CPU")
@pytest.mark.parametrize("make", [lambda: S4DMixer(2, 2), lambda: S6Mixer(2, 2)], ids=["s4d", "s6"])
def test_triton_backend_matches_closed_form(make):
    torch.manual_seed(0)
    mixer = make()
    x = random_input(5, 2, seed=1)
    Ja = jacobian_autograd(mixer, x, backend="triton")
    assert max_relative_error(Ja, jacobian_closed_form(mixer, x)) < TOL


# ------------------------------------------------------------------------------------------------ CLI

def run_cli(args, capsys):
    return run(["sensitivity", *args], capsys)


def test_cli_table_json_and_plot(tmp_path, capsys):
    code, out, err = run_cli(["--layer", "s4d", "--length", "24", "--n", "2"], capsys)
    assert code == 0, err
    assert "max rel. err. autograd vs closed form" in out and "rate fit" in out
    code, out, err = run_cli(["--layer", "s6", "--length", "16", "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["config"]["layer"] == "s6" and rec["metrics"]["max_rel_err_state"] < TOL
    assert len(rec["components"]) == 2 * 4
    png = tmp_path / "s.png"
    code, out, err = run_cli(["--experiment", "lemma2", "--length", "20", "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.stat().st_size > 1000
    assert "holds: yes" in out
    svg = tmp_path / "a.svg"
    code, out, err = run_cli(["--layer", "attention", "--length", "12", "--d", "2", "--plot", str(svg)], capsys)
    assert code == 0, err
    assert "bound (45)" in out and svg.read_text().lstrip().startswith("<?xml")
    code, out, err = run_cli(["--experiment", "forgetting", "--length", "12", "--j", "3", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["metrics"]["max_other_over_kept"] < 1e-12


def test_cli_loaded_weights(tmp_path, capsys):
    mixer = S6Mixer(2, 3)
    with torch.no_grad():
        mixer.A.fill_(-0.25)
    path = tmp_path / "w.pt"
    torch.save(mixer.state_dict(), path)
    code, out, err = run_cli(["--layer", "s6", "--n", "3", "--length", "12", "--weights", str(path), "--json"],
                             capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert {c["lambda"] for c in rec["components"]} == {0.25}
    model_path = tmp_path / "model.pt"        # a saved model's state dict: the mixer.* entries are used
    torch.save({f"mixer.{k}": v for k, v in mixer.state_dict().items()} | {"out.weight": torch.zeros(1)},
               model_path)
    assert run_cli(["--n", "3", "--length", "8", "--weights", str(model_path)], capsys)[0] == 0


@pytest.mark.parametrize("args, needle", [
    (["--length", "0"], "length"),
    (["--layer", "s7"], "s7"),
    (["--weights", "/nonexistent/w.pt"], "does not exist"),
    (["--weights", "CORRUPT"], "not a readable"),
    (["--weights", "MISFIT"], "does not fit"),
    (["--plot", "out.pdf"], "out.pdf"),
    (["--layer", "s4d", "--experiment", "lemma2"], "s4d"),
    (["--j", "70"], "j must be"),
    (["--n", "0"], "n must be"),
    (["--length", "3000"], "entries"),
    (["--experiment", "forgetting", "--weights", "MISFIT"], "--weights"),
])
def test_cli_bad_input_exits_2(args, needle, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    misfit = tmp_path / "misfit.pt"
    torch.save(S6Mixer(2, 5).state_dict(), misfit)
    args = [str(corrupt) if a == "CORRUPT" else str(misfit) if a == "MISFIT" else a for a in args]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("approx: error:") and needle in lines[0]
    assert "Traceback" not in err


def test_attention_too_large_is_refused_before_any_work(monkeypatch):
    import ssm.sensitivity.attention as att_mod

    def never(*args, **kwargs):
        raise AssertionError("the Jacobian was computed")

    monkeypatch.setattr(att_mod, "attention_jacobian_autograd", never)
    with pytest.raises(ValueError, match="would have 64000000 entries"):
        attention_experiment(length=2000, d=4)


def test_attention_larger_than_free_memory_is_refused(monkeypatch):
    import ssm.sensitivity.attention as att_mod
    monkeypatch.setattr(att_mod, "free_memory", lambda device: 1 << 20)       # 1 MiB free
    with pytest.raises(ValueError, match="GiB free on cpu"):
        attention_experiment(length=300, d=2)


def test_attention_passes_shrink_to_the_memory_budget():
    import ssm.sensitivity.attention as att_mod
    assert att_mod._rows_per_pass(1000, 1 << 40) == 64
    assert att_mod._rows_per_pass(1000, 10 * 48 * 1000 * 1000) == 10
    assert att_mod._rows_per_pass(1000, 1) == 1
    x = random_input(9, 3, 0)
    att = Attention.random(3, 0)
    torch.testing.assert_close(attention_jacobian_autograd(att, x, rows_per_pass=1),
                               attention_jacobian_autograd(att, x, rows_per_pass=64), rtol=0, atol=0)


@pytest.mark.parametrize("experiment,layer", [("decay", "s6"), ("decay", "attention"), ("lemma2", "s6"),
                                              ("forgetting", "s6")])
def test_experiments_return_data_not_labels(experiment, layer):
    from ssm.sensitivity import run_sensitivity

    series = run_sensitivity(layer=layer, experiment=experiment, length=12)["series"]
    assert series["experiment"] == ("attention" if layer == "attention" else experiment)

    def strings(v):
        if isinstance(v, dict):
            return [s for k, w in v.items() for s in strings(w) if k not in ("experiment", "layer")]
        if isinstance(v, (list, tuple)):
            return [s for w in v for s in strings(w)]
        return [v] if isinstance(v, str) else []

    assert strings(series) == []
