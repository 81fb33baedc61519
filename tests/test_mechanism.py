"""The mechanistic study: Lemma 1's population gradient against a per-sequence formula written with loops, its
exact entries, and the command line."""
import json

import numpy as np
import pytest
import torch

from conftest import run_cli as run
from ssm.mechanism.lemma import gradient, lemma_values, population_gradient, sequences


def loop_gradient(x: np.ndarray, V: int) -> np.ndarray:
    """∂ℓ/∂W_Δ at 0 for one sequence: g_i Σ_l x̂_l[i] x̂_l[j], g = (−(p − e_y), p − e_y), p = 1/V, y = x_1."""
    p = np.full(V, 1.0 / V)
    p[x[1]] -= 1.0
    g = np.concatenate([-p, p])
    M = np.zeros((2 * V, 2 * V))
    for l in range(len(x)):
        xh = np.zeros(2 * V)
        if l > 0:
            xh[x[l - 1]] = 1.0
        xh[V + x[l]] = 1.0
        M += np.outer(xh, xh)
    return g[:, None] * M


@pytest.mark.parametrize("V,T", [(5, 7), (8, 30), (3, 2)])
def test_autograd_gradient_equals_the_per_sequence_formula(V, T):
    x = sequences(V, T, 6, torch.Generator().manual_seed(V + T))
    auto = gradient(torch.zeros(2 * V, 2 * V, dtype=torch.float64), x).numpy()
    ref = np.mean([loop_gradient(row, V) for row in x.numpy()], axis=0)
    np.testing.assert_allclose(auto, ref, rtol=1e-12, atol=1e-15)


def test_key_entries_are_the_same_in_every_sequence():
    r = population_gradient(16, 12, 2000, batches=4, seed=1)
    G, se = r["grad"], r["se"]
    assert G[0, 0] == pytest.approx(-1 / 16, abs=1e-15) and se[0, 0] == 0
    assert G[16, 16] == pytest.approx(2 / 16, abs=1e-15) and se[16, 16] == 0
    assert r["summary"]["row_0"][0] == pytest.approx(-2 / 16, abs=1e-12)    # W[0, 0] and W[0, |V| + x_1]
    assert lemma_values(16, 12) == {"row_0": -1 / 12, "row_V": 2 / 12, "rows_mid": 12 / 256 - 1 / 16,
                                    "rows_high": -12 / 256 + 1 / 16}


def test_lemma_command_prints_measured_beside_the_lemma(capsys):
    code, out, err = run(["mechanism", "lemma", "--vocab", "8", "--length", "20", "--samples", "400"], capsys)
    assert code == 0, err
    assert "|V| = 8, T = 20" in out and "W[0, 0]" in out and "-0.125 ± 0" in out and "lemma (eq. 4)" in out
    code, out, err = run(["mechanism", "lemma", "--vocab", "8", "--length", "20", "--samples", "400", "--json"],
                         capsys)
    assert code == 0, err
    (s,) = json.loads(out)["metrics"]["settings"]
    assert s["summary"]["w_V_V"] == pytest.approx([0.25, 0.0], abs=1e-12)
    code, _, err = run(["mechanism", "lemma", "--vocab", "8", "16", "--length", "20"], capsys)
    assert code == 2 and "pair up" in err


def test_trace_reads_the_state_the_model_computes():
    from ssm.mechanism import probes
    from ssm.models import build, make_model_config

    model = build(make_model_config("mamba-simple", d=12, N=1), vocab_size=6, num_classes=6, length=40)
    params = model.init([5], dtype=torch.float64)
    tokens = torch.randint(0, 6, (1, 1, 40), generator=torch.Generator().manual_seed(0))
    logits = model.logits(params, tokens, {})[0, 0]
    out = probes.trace({k: v[0] for k, v in params.items()}, tokens[0, 0], 6)
    np.testing.assert_allclose(out["y"], logits.numpy(), rtol=1e-10, atol=1e-12)
    assert out["keys"] == (tokens[0, 0] == 0).nonzero()[:, 0].tolist()


def test_mechanisms_of_a_model_with_zero_w_delta_are_the_closed_form():
    from ssm.mechanism import probes

    V = 5
    params = {"W_delta": torch.zeros(2 * V, 2 * V, dtype=torch.float64),
              "A_log": torch.full((2 * V, 1), np.log(2.0), dtype=torch.float64)}          # Λ = −2
    m = probes.mechanisms(params, V)
    ln2 = np.log(2.0)                                                                   # Δ = softplus(0)
    for case in m.values():
        for k, v in case.items():
            want = np.exp(-2 * ln2) if k.startswith("forget") else ln2
            assert v == pytest.approx(want, rel=1e-12), k
    s = probes.w_delta_structure({"W_delta": torch.eye(2 * V)}, V)
    assert s["share_rows_0_V"] == pytest.approx(2 / (2 * V)) and s["share_rows_0_V_second_half"] == pytest.approx(
        1 / (2 * V))


def test_train_then_probe_through_the_command_line(tmp_path, capsys):
    db = str(tmp_path / "runs.sqlite")
    setting = ["--length", "30", "--epochs", "2", "--train-size", "64", "--store", db, "--device", "cpu"]
    code, _, err = run(["mechanism", "probe", "--figure", "c", *setting], capsys)
    assert code == 2 and "train it first" in err
    code, out, err = run(["mechanism", "train", *setting, "--seeds", "2", "--no-progress", "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)["metrics"]["runs"]
    assert [r["seed"] for r in rows] == [0, 1] and all(0 <= r["accuracy"] <= 1 for r in rows)
    code, out, err = run(["mechanism", "probe", "--figure", "c", *setting], capsys)
    assert code == 0, err
    assert "write    forget e_0" in out and "read     input e_|V|+k" in out
    png = tmp_path / "w.png"
    code, out, err = run(["mechanism", "probe", "--figure", "7", *setting, "--seed", "1", "--plot", str(png)], capsys)
    assert code == 0 and "of what training changed" in out and png.stat().st_size > 0
    code, out, err = run(["mechanism", "probe", "--figure", "4", *setting, "--json"], capsys)
    assert code == 0, err
    m = json.loads(out)["metrics"]
    assert 0 <= m["query_prediction"] < 8 and 1 <= m["query_target"] < 8
    code, _, err = run(["mechanism", "probe", "--figure", "c", *setting, "--plot", str(png)], capsys)
    assert code == 2 and "App. C, Figs. 5 and 6 are tables" in err


def test_zero_initialisation_starts_w_delta_at_zero():
    from ssm.models import build, make_model_config

    model = build(make_model_config("mamba-simple", d=8, w_init="zero"), vocab_size=4, num_classes=4, length=5)
    assert torch.equal(model.init([3])["W_delta"], torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="w_init must be one of uniform, zero"):
        make_model_config("mamba-simple", w_init="normal")


def test_key_vectors_are_the_key_rows_and_their_products():
    from ssm.mechanism import probes

    B = torch.tensor([[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]], dtype=torch.float64)
    C = torch.tensor([[0.0, 2.0], [5.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    m = probes.key_vectors({"B": B, "C": C}, 2)
    assert m["B"] == [[1.0, 0.0], [3.0, 4.0]]
    assert m["<B_1, B_2>"] == 3.0 and m["cos(B_1, B_2)"] == pytest.approx(0.6)
    assert m["<C_1, C_2>"] == 0.0


def test_probe_figure_5_on_a_two_key_model(tmp_path, capsys):
    db = str(tmp_path / "runs.sqlite")
    setting = ["--keys", "2", "--length", "30", "--epochs", "1", "--train-size", "32", "--store", db,
               "--device", "cpu"]
    code, _, err = run(["mechanism", "train", *setting, "--seeds", "1", "--no-progress"], capsys)
    assert code == 0, err
    code, out, err = run(["mechanism", "probe", "--figure", "5", *setting], capsys)
    assert code == 0, err
    assert "B_2 = (" in out and "<C_1, C_2>" in out
    code, _, err = run(["mechanism", "probe", "--figure", "c", *setting], capsys)
    assert code == 2 and "the --keys 1 model" in err


def test_readout_distance_is_zero_for_the_fixed_readout_up_to_scale():
    from ssm.mechanism import probes

    V = 4
    ref = torch.cat([-torch.eye(V), torch.eye(V)], dim=1).double()
    d = probes.readout_distance(3 * ref)
    assert d["scale"] == pytest.approx(3) and d["relative_distance"] == pytest.approx(0, abs=1e-12)
    shifted = probes.readout_distance(3 * ref + torch.arange(2 * V, dtype=torch.float64))   # one u added to every row
    assert shifted["relative_distance"] > 0.1 and shifted["relative_distance_centred"] == pytest.approx(0, abs=1e-12)
    other = torch.cat([torch.eye(V), torch.eye(V)], dim=1).double()                        # orthogonal to [−I I]
    assert probes.readout_distance(other)["relative_distance"] == pytest.approx(1)


def test_probe_figure_6_reads_a_learned_readout(tmp_path, capsys):
    db = str(tmp_path / "runs.sqlite")
    setting = ["--learn-head", "--length", "30", "--epochs", "1", "--train-size", "32", "--store", db,
               "--device", "cpu"]
    code, _, err = run(["mechanism", "train", *setting, "--seeds", "1", "--no-progress"], capsys)
    assert code == 0, err
    code, out, err = run(["mechanism", "probe", "--figure", "6", *setting, "--json"], capsys)
    assert code == 0, err
    assert 0 <= json.loads(out)["metrics"]["change"]["relative_distance"] <= 1.5
    code, _, err = run(["mechanism", "probe", "--figure", "7", *setting], capsys)
    assert code == 2 and "Fig. 6 reads the learned read-out" in err


def test_table1_lists_the_studys_cells_and_prints_them_beside_the_lab(tmp_path, capsys):
    from ssm.mechanism import table1

    assert len(table1.cells()) == 4 * 3 * 2 and table1.PAPER["tf2-conv-rope"][(512, 1)] == 77
    db = str(tmp_path / "runs.sqlite")
    argv = ["mechanism", "table1", "--rows", "mamba", "tf2-conv-rope", "--lengths", "24", "--kappas", "2",
            "--seeds", "1", "--epochs", "1", "--train-size", "16", "--store", db, "--device", "cpu", "--no-progress"]
    code, out, err = run(argv + ["--concurrent", "2"], capsys)
    assert code == 0, err
    assert "1-layer Mamba, conv" in out and "2-layer TF, conv, RoPE" in out
    code, _, err = run(argv + ["--concurrent", "0"], capsys)
    assert code == 2 and "--concurrent must be an integer ≥ 1, got 0" in err
    code, out, err = run(argv + ["--stored", "--json"], capsys)
    assert code == 0, err
    cells = json.loads(out)["metrics"]["cells"]
    assert [(c["row"], c["T"], c["kappa"], c["paper"]) for c in cells] == [("mamba", 24, 2, None),
                                                                            ("tf2-conv-rope", 24, 2, None)]


def test_key_vectors_of_pair_maps_read_b_as_previous_and_c_as_current_token():
    from ssm.mechanism import probes

    V = 3
    B = torch.arange(2 * V * 2, dtype=torch.float64).reshape(2 * V, 2)
    C = -B
    m = probes.key_vectors({"B": B, "C": C}, 2, V)
    assert m["B"] == B[:2].tolist() and m["C"] == C[V:V + 2].tolist()


def test_table1_trains_one_ensemble_per_cell(tmp_path, capsys):
    """Cells of different T are not folded into one padded group: every run's group holds its cell's seeds."""
    from approx.store import Store

    db = str(tmp_path / "runs.sqlite")
    argv = ["mechanism", "table1", "--rows", "mamba", "--lengths", "12", "16", "--kappas", "1", "--seeds", "2",
            "--epochs", "1", "--train-size", "16", "--store", db, "--device", "cpu", "--no-progress", "--json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    keys = json.loads(out)["config"]["runs"]
    with Store(db) as s:
        groups = [s.get_key(k)[1]["group"] for k in keys]
    assert [g["members"] for g in groups] == [2, 2, 2, 2]
    assert groups[0]["key"] == groups[1]["key"] != groups[2]["key"] == groups[3]["key"]
