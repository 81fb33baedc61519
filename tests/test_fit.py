"""approx.fit end to end: the documented must-show numbers, every strategy on signals it must fit exactly, the
finite-sharpness effect, time modes, and the result record."""
import json
import math

import numpy as np
import pytest
import torch

import approx
import signals
from approx import fit
from approx.records import to_json
from signals.grid import midpoints


def test_mamba_heaviside_fits_three_jumps_with_four_bases():
    r = fit("piecewise", m=3, basis="mamba", strategy="heaviside", n=4)
    assert r.metrics["l2_sq"] < 1e-4                 # docs/fit.md's must-show bound
    assert r.metrics["l2_sq"] < 1e-20                # in fact exact up to rounding at the default sharpness
    assert r.metrics["n_used"] == 4 and len(r.params["jumps"]) == 3
    assert r.params["sharpness"] == 64.0 * 4096 ** 2


@pytest.mark.parametrize("n", [12, 32, 61])
def test_mamba_haar_is_within_one_percent_of_ideal_haar_with_n_over_3_atoms(n):
    r = fit("piecewise", m=3, seed=1, basis="mamba", strategy="haar", n=n)
    ideal = fit("piecewise", m=3, seed=1, basis="haar", strategy="best", n=n // 3)
    assert r.metrics["l2_sq"] == pytest.approx(ideal.metrics["l2_sq"], rel=1e-2)
    assert r.metrics["l2_sq"] == pytest.approx(ideal.metrics["l2_sq"], rel=1e-9)     # measured: ~1e-13
    assert r.metrics["ideal_l2_sq"] == pytest.approx(ideal.metrics["l2_sq"], rel=1e-9)
    assert len(r.params["atoms"]) == n // 3 and r.metrics["n_used"] <= n


@pytest.mark.parametrize("n", [1, 8, 33])
def test_s4d_fourier_is_within_one_percent_of_ideal_fourier(n):
    r = fit("piecewise", m=3, seed=2, basis="s4d", strategy="fourier", n=n)
    ideal = fit("piecewise", m=3, seed=2, basis="fourier", strategy="partial", n=n)
    assert r.metrics["l2_sq"] == pytest.approx(ideal.metrics["l2_sq"], rel=1e-2)
    assert r.metrics["l2_sq"] == pytest.approx(ideal.metrics["l2_sq"], rel=1e-8)
    assert r.metrics["n_used"] == n


def test_s4d_best_matches_ideal_best_fourier_and_beats_the_partial_sum():
    best = fit("piecewise", m=3, seed=2, basis="s4d", strategy="best", n=16)
    ideal = fit("piecewise", m=3, seed=2, basis="fourier", strategy="best", n=16)
    partial = fit("piecewise", m=3, seed=2, basis="fourier", strategy="partial", n=16)
    assert best.metrics["l2_sq"] == pytest.approx(ideal.metrics["l2_sq"], rel=1e-8)
    assert best.metrics["l2_sq"] <= partial.metrics["l2_sq"]
    assert sorted(zip(best.params["frequencies"], best.params["kinds"])) == \
        sorted(zip(ideal.params["frequencies"], ideal.params["kinds"]))


def test_time_recover_and_pe_agree():
    a = fit("piecewise", m=3, basis="mamba", strategy="haar", n=30, time="pe", samples=1024)
    b = fit("piecewise", m=3, basis="mamba", strategy="haar", n=30, time="recover", samples=1024)
    assert (a.ssm_basis - b.ssm_basis).abs().max().item() < 1e-10
    assert abs(a.metrics["l2_sq"] - b.metrics["l2_sq"]) < 1e-10


def test_a_single_haar_atom_is_fit_exactly_by_three_mamba_bases():
    r = fit("haar", j=3, k=2, basis="mamba", strategy="haar", n=3)
    assert r.metrics["n_used"] == 3 and r.params["atoms"][0]["j"] == 3 and r.params["atoms"][0]["k"] == 2
    assert r.metrics["l2_sq"] < 1e-24
    edge = fit("haar", j=2, k=3, basis="mamba", strategy="haar", n=3)   # ψ at the right edge: 2 Heavisides
    assert edge.metrics["n_used"] == 2 and edge.metrics["l2_sq"] < 1e-24


def test_a_step_is_fit_exactly_by_two_heavisides():
    r = fit("step", at=0.3, basis="mamba", strategy="heaviside", n=2, samples=1000)
    assert r.metrics["n_used"] == 2 and r.metrics["l2_sq"] < 1e-24
    one = fit("step", at=0.3, basis="mamba", strategy="heaviside", n=1, samples=1000)
    assert one.metrics["l2_sq"] == pytest.approx(0.21, rel=1e-12)   # the constant alone: var of H(s − 0.3)


def test_a_pure_cosine_is_fit_exactly_by_the_fourier_basis():
    L = 512
    s = midpoints(L)
    x = 0.7 + 2 * torch.cos(2 * math.pi * 3 * s)
    for basis, strategy, n in (("s4d", "fourier", 6), ("fourier", "partial", 6), ("s4d", "best", 2),
                               ("fourier", "best", 2)):
        assert fit(x, basis=basis, strategy=strategy, n=n).metrics["l2_sq"] < 1e-22
    assert fit(x, basis="s4d", strategy="fourier", n=5).metrics["l2_sq"] == pytest.approx(2.0, rel=1e-10)


def test_heaviside_strategy_uses_only_the_jumps_the_signal_has():
    r = fit("piecewise", m=2, seed=5, basis="mamba", strategy="heaviside", n=10, samples=512)
    assert r.metrics["n_used"] == 3 and r.metrics["l2_sq"] < 1e-24
    needle = fit("needle", at=0.3, width=0.01, basis="mamba", strategy="heaviside", n=3)
    assert needle.metrics["l2_sq"] < 1e-24


def test_finite_sharpness_error_grows_as_w_shrinks():
    L = 1024
    errs = [fit("piecewise", m=3, basis="mamba", strategy="heaviside", n=4, samples=L, sharpness=w).metrics["l2_sq"]
            for w in (64.0 * L * L, 2.0 * L * L, 0.5 * L * L, 0.1 * L * L)]
    assert errs[0] < 1e-20
    assert all(a < b for a, b in zip(errs, errs[1:])), errs


def test_s4d_lin_and_linear_haar_run_and_improve_with_n():
    e = [fit("piecewise", m=3, basis="s4d", strategy="s4d-lin", n=n, samples=1024).metrics["l2_sq"] for n in (4, 16)]
    assert e[1] < e[0]
    lin = fit("piecewise", m=3, basis="haar", strategy="linear", n=16)
    best = fit("piecewise", m=3, basis="haar", strategy="best", n=16)
    assert best.metrics["l2_sq"] <= lin.metrics["l2_sq"]
    assert [(a["j"], a["k"]) for a in lin.params["atoms"][:3]] == [(-1, 0), (0, 0), (1, 0)]


def test_record_is_complete_and_serialisable():
    r = fit("piecewise", m=3, basis="mamba", n=12, samples=256, seed=9)
    rec = json.loads(to_json(r.record()))
    assert rec["config"]["basis"] == "mamba" and rec["config"]["strategy"] == "haar" and rec["seed"] == 9
    assert {"l2", "l2_sq", "n_used", "n_requested"} <= set(rec["metrics"])
    assert rec["params"]["sharpness"] == 64.0 * 256 ** 2 and rec["params"]["heavisides"]
    assert len(rec["signal"]["breakpoints"]) == 3
    assert rec["metrics"]["l2"] == pytest.approx(math.sqrt(rec["metrics"]["l2_sq"]))
    assert approx.fit is fit and approx.registry.strategies("mamba", fit=True) == ("haar", "heaviside")


@pytest.mark.parametrize("kwargs, match", [
    ({"basis": "wavelet"}, "unknown basis 'wavelet'"),
    ({"basis": "s4d", "strategy": "haar"}, "does not belong to basis 's4d'"),
    ({"n": 0}, "n must be an integer ≥ 1, got 0"),
    ({"m": -2}, "m must be an integer ≥ 0, got -2"),
    ({"sharpness": 0}, "sharpness"),
    ({"time": "clock"}, "time must be one of"),
    ({"device": "tpu"}, "device must be one of"),
    ({"samples": 1000}, "power-of-two"),
    ({"basis": "mamba", "n": 2}, "n must be ≥ 3"),
])
def test_bad_arguments_raise_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit("piecewise", **kwargs)


def test_cuda_without_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda'.*not available"):
        fit("piecewise", device="cuda")


@pytest.mark.parametrize("basis, strategy", [("mamba", "haar"), ("s4d", "fourier"), ("s4d", "best"),
                                             ("mamba", "heaviside")])
def test_ideal_error_survives_a_large_mean(basis, strategy):
    """ideal_l2_sq is the residual of the ideal dictionary's own fit: a 1e6 offset (which cancels in ‖x‖² − Σc²,
    0.0155 against 0.0173) changes it no more than rounding, and it matches the realised fit where they coincide."""
    x = signals.piecewise(3, 4096, 0)
    plain = fit(x, basis=basis, strategy=strategy, n=32 if basis != "mamba" or strategy == "haar" else 4)
    shifted = fit(x + 1e6, basis=basis, strategy=strategy, n=plain.config["n"])
    assert shifted.metrics["ideal_l2_sq"] == pytest.approx(plain.metrics["ideal_l2_sq"], rel=1e-6, abs=1e-12)
    assert shifted.metrics["ideal_l2_sq"] == pytest.approx(shifted.metrics["l2_sq"], rel=1e-6, abs=1e-12)


def test_ideal_dictionary_curves_survive_a_large_mean():
    """The sweeps' ideal Haar and Fourier curves are tail sums: on signals with a 1e6 offset they equal the
    residual of an explicit least-squares fit on the chosen functions, as does the nested residual of any basis."""
    x = signals.piecewise(2, 1024, 3, batch=2) + 1e6
    L, ks = 1024, (1, 10, 40)
    lsq = approx.lstsq

    def residual(G, k):
        return lsq.errors(x[k], lsq.least_squares(G, x[k])[1])["l2_sq"]

    best = approx.bases.haar_best_l2_sq(x)
    four = approx.bases.fourier_partial_l2_sq(x)
    for t in range(2):
        for k in ks:
            j, kk = approx.bases.haar_index(L)
            idx = approx.bases.haar_best_atoms(x[t], k)
            assert float(best[t, k]) == pytest.approx(float(residual(approx.bases.haar_atoms(j[idx], kk[idx], L), t)),
                                                      rel=1e-6)
            f, kind = approx.bases.fourier_index(k)
            G = approx.bases.fourier_functions(f, kind, L)
            assert float(four[t, k]) == pytest.approx(float(residual(G, t)), rel=1e-6)
    G = approx.bases.haar_atoms(*approx.bases.haar_index(L), L)[:, :40]
    nested = lsq.nested_l2_sq(G, x)
    direct = torch.stack([lsq.errors(x, lsq.least_squares(G[:, :k], x)[1])["l2_sq"] for k in ks], -1)
    torch.testing.assert_close(nested[:, [k - 1 for k in ks]], direct, rtol=1e-6, atol=1e-9)


def test_ill_conditioned_s4d_lin_is_reported_and_solved_by_the_stated_svd():
    """S4D-Lin at N = 48 has a condition number ~1e15: the fit says so, and its answer is the truncated SVD with
    the stated cutoff — the same as LAPACK's SVD-based gelsd with that cutoff, an independent implementation."""
    import scipy.linalg

    r = fit("piecewise", m=3, basis="s4d", strategy="s4d-lin", n=48)
    assert r.metrics["condition_number"] > 1e14
    G, x = r.basis.numpy(), r.x.numpy()
    coef = scipy.linalg.lstsq(G, x, cond=approx.lstsq.RCOND, lapack_driver="gelsd")[0]
    l2_sq = float(np.mean((x - G @ coef) ** 2))
    assert r.metrics["l2_sq"] == pytest.approx(l2_sq, rel=1e-8)       # a cutoff at ε·σ_max: 3e-7 apart
    np.testing.assert_allclose(r.fit.numpy(), G @ coef, rtol=0, atol=1e-6)
    assert fit("piecewise", basis="s4d", n=8).metrics["condition_number"] < 10
