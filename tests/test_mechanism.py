"""The mechanistic study: Lemma 1's population gradient against a per-sequence formula written with loops, its
exact entries, and the command line."""
import json

import numpy as np
import pytest
import torch

from cli.main import main
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


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


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
