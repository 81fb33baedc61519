"""approx.rates and approx.rate_fit: the batched sweep against independent single fits, the rate fits against
synthetic curves with known rates, the store's reuse and resume, and Cor. 1's rates at small sizes."""
import math

import numpy as np
import pytest
import torch

import signals
from approx import bases, fit
from approx import rates as R
from approx import registry
from approx.rate_fit import choose_fit_range, fit_rate, summarize, verdict
from approx.store import Store


# --- rate fits on synthetic curves -------------------------------------------------------------------------------

def _noisy(curve, T=40, sigma=0.3, seed=0):
    rng = np.random.default_rng(seed)
    return curve[None, :] * np.exp2(rng.normal(0, sigma, (T, 1)) + rng.normal(0, 0.05, (T, curve.size)))


@pytest.mark.parametrize("p", [-1.0, -0.5, -2.0])
def test_power_fit_recovers_exponent_and_ci_covers_it(p):
    N = np.arange(1, 65)
    y = _noisy(0.3 * N.astype(float) ** p)
    f = fit_rate(y, np.full(y.shape[0], 1e-30), law="power", n_lo=4)
    assert f["name"] == "p" and f["n_range"] == [4, 64] and f["points"] == 61
    assert f["estimate"] == pytest.approx(p, abs=0.02)
    assert f["ci"][0] <= p <= f["ci"][1] and f["ci"][0] < f["ci"][1]
    assert f["r2"] > 0.99


@pytest.mark.parametrize("c", [1.0, 2.5, 9.0])
def test_exponential_fit_recovers_c_and_stops_at_the_floor(c):
    N = np.arange(1, 41)
    floor = np.full(40, 1e-12)
    y = np.maximum(_noisy(np.exp2(-N / c)), floor[:, None])
    f = fit_rate(y, floor, law="exp", n_lo=2)
    assert f["estimate"] == pytest.approx(c, rel=0.05)
    assert f["ci"][0] <= c * 1.02 and f["ci"][1] >= c * 0.98
    # the range ends before 10 % of the trials come within 100x of the floor: 2^(-N/c) ≈ 1e-10
    n_floor = int(np.ceil(-c * math.log2(1e-10)))
    assert f["n_range"][0] == 2 and f["n_range"][1] <= min(n_floor, 40)


def test_fit_range_skips_missing_n_uses_stride_and_reports_too_few_points():
    y = np.exp2(-np.arange(1, 13) / 2.0)[None].repeat(5, 0)
    y[:, 4] = np.nan
    floor = np.full(5, 1e-30)
    lo, hi, ns = choose_fit_range(y, floor, n_lo=2)
    assert 5 not in ns and (lo, hi) == (2, 12)
    assert list(choose_fit_range(y, floor, n_lo=2, stride=3)[2]) == [3, 6, 9, 12]
    f = fit_rate(y, floor, law="exp", n_lo=11)
    assert f["estimate"] is None and "fewer than 3" in f["reason"]
    flat = fit_rate(np.ones((4, 10)), np.full(4, 1e-30), law="exp", n_lo=1)
    assert math.isinf(flat["estimate"])
    with pytest.raises(ValueError, match="law"):
        fit_rate(y, floor, law="linear", n_lo=1)


def test_summary_statistics_and_floor_fraction():
    y = np.array([[1.0, 1e-20], [3.0, 2.0]])
    s = summarize(y, np.array([1e-15, 1e-15]))
    assert s["mean"] == [2.0, 1.0] and s["std"] == [1.0, 1.0]
    assert s["geomean"][0] == pytest.approx(math.sqrt(3.0))
    assert s["geomean"][1] == pytest.approx(math.sqrt(2e-15))        # clipped at the floor
    assert s["at_floor"] == [0.0, 0.5]


def theory(basis, strategy, m):
    return registry.get(basis, strategy).theory(m)


def test_theory_and_verdicts_say_what_the_numbers_say():
    assert theory("s4d", "fourier", 3)["value"] == -1.0
    assert theory("haar", "best", 3)["value"] == 3.0 and theory("mamba", "haar", 3)["value"] == 9.0
    assert theory("mamba", "heaviside", 2)["law"] == "floor"
    assert registry.get("haar", "linear").theory is None
    assert verdict({"law": None, "estimate": None}, {"law": None}, 1) == "no rate is stated for this strategy"
    ok = {"estimate": -1.05, "ci": [-1.1, -1.0]}
    assert verdict(ok, theory("s4d", "fourier", 1), 1).startswith("matches")
    off = verdict({"estimate": -1.4, "ci": [-1.5, -1.3]}, theory("fourier", "best", 1), 1)
    assert off.startswith("differs") and "faster than N^-1" in off
    lin = verdict({"estimate": -0.5, "ci": [-0.6, -0.4]}, theory("s4d", "s4d-lin", 1), 1)
    assert "S4D-Lin" in lin and "slower than N^-1" in lin
    below = verdict({"estimate": 1.2, "ci": [1.0, 1.4]}, theory("haar", "best", 2), 2)
    assert "at least as fast" in below and "share one wavelet" in below
    one_jump = verdict({"estimate": 0.8, "ci": [0.7, 0.9]}, theory("haar", "best", 1), 1)
    assert "at least as fast" in one_jump and "share" not in one_jump and "where the jump sits" in one_jump
    # c above the bound is slower than it, whatever the tolerance: never "at least as fast"
    within = verdict({"estimate": 3.19, "ci": [3.0, 3.4]}, theory("mamba", "haar", 1), 1)
    assert within.startswith("decays slightly slower") and "c = 3.19 > 3" in within and "1.25" in within
    above = verdict({"estimate": 4.0, "ci": [3.5, 4.5]}, theory("haar", "best", 2), 2)
    assert above.startswith("decays slower") and "floor" in above


# --- planning and validation ---------------------------------------------------------------------------------------

def test_plan_units_defaults_filters_and_references():
    units = R.plan_units([1, 2], ["s4d", "mamba"])
    assert units[:5] == [(1, "s4d", "fourier"), (1, "mamba", "haar"), (1, "mamba", "heaviside"),
                         (1, "haar", "best"), (1, "fourier", "partial")]
    assert len(units) == 10
    assert R.plan_units([3], ["s4d", "mamba"], ["learned"], reference=False) == \
        [(3, "s4d", "learned"), (3, "mamba", "learned")]
    assert R.plan_units([1], ["haar"], ["best"]) == [(1, "haar", "best"), (1, "fourier", "partial")]
    with pytest.raises(ValueError, match="strategy 'haar' belongs to none of the bases s4d"):
        R.plan_units([1], ["s4d"], ["haar"])
    with pytest.raises(ValueError, match="unknown basis 'wavelet'"):
        R.plan_units([1], ["wavelet"])
    with pytest.raises(ValueError, match=r"m must be an integer ≥ 0, got -1"):
        R.plan_units([-1], ["s4d"])


@pytest.mark.parametrize("kw, match", [
    (dict(n_max=0), "n_max must be"), (dict(trials=0), "trials must be"), (dict(samples=1000), "power-of-two"),
    (dict(sharpness=-1.0), "sharpness"), (dict(n_max=600, basis=["s4d"], reference=False),
                                           "n_max = 600 exceeds the 511 s4d/fourier functions"),
    (dict(strategy=["learned"], learned_n=[9]), "learned_n = 9 exceeds"),
    (dict(learned_n=[2]), "learned_n applies only to learned strategies"),
])
def test_sweep_rejects_bad_numbers(kw, match):
    args = dict(m=[1], basis=["s4d", "mamba"], n_max=8, trials=2, samples=512, progress=False, device="cpu")
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        R.rate_sweep(**args)


# --- the batched computation against independent single fits ------------------------------------------------------

@pytest.mark.parametrize("basis, strategy", [("s4d", "fourier"), ("s4d", "s4d-lin"), ("s4d", "best"),
                                             ("mamba", "haar"), ("mamba", "heaviside"), ("haar", "best"),
                                             ("haar", "linear"), ("fourier", "partial"), ("fourier", "best")])
def test_unit_rows_equal_single_fits_of_each_trial(basis, strategy):
    m, L, T, n_max, seed = 2, 256, 3, 12, 5
    l2, floor, _ = R.compute_unit(m, basis, strategy, n_max=n_max, trials=T, samples=L, seed=seed)
    assert l2.shape == (T, n_max) and floor.shape == (T,)
    x = signals.piecewise(m, L, seed, batch=T)
    for t in (0, T - 1):
        for n in (3, 7, 12):
            if basis == "mamba" and strategy == "heaviside" and n > m + 1:
                continue
            ref = fit(x[t], basis=basis, strategy=strategy, n=n, device="cpu").metrics["l2_sq"]
            assert l2[t, n - 1] == pytest.approx(ref, rel=1e-7, abs=1e-12), (t, n)


def test_scan_realised_bases_agree_with_their_ideal_dictionaries():
    kw = dict(n_max=40, trials=4, samples=512, seed=1)
    s4d, _, _ = R.compute_unit(3, "s4d", "fourier", **kw)
    fou, _, _ = R.compute_unit(3, "fourier", "partial", **kw)
    np.testing.assert_allclose(s4d, fou, rtol=1e-8, atol=1e-13)
    best, _, _ = R.compute_unit(3, "s4d", "best", **kw)
    np.testing.assert_allclose(best, R.compute_unit(3, "fourier", "best", **kw)[0], rtol=1e-8, atol=1e-13)
    mh, floor, extra = R.compute_unit(3, "mamba", "haar", **kw)
    haar, _, _ = R.compute_unit(3, "haar", "best", **kw)
    n = np.arange(3, 41, 3)
    np.testing.assert_allclose(mh[:, n - 1], haar[:, n // 3 - 1], rtol=1e-6, atol=1e-10)   # 3 bases per atom
    assert extra["sharpness"] == bases.default_sharpness(512)
    hv, _, _ = R.compute_unit(3, "mamba", "heaviside", **kw)
    x = signals.piecewise(3, 512, 1, batch=4)
    assert np.all(hv[:, 3:] <= 1e-12 * (x ** 2).mean(-1).numpy()[:, None])          # exact at N = m + 1
    assert np.all(hv[:, 2] > 1e-6)


def test_blunt_heavisides_set_a_floor_that_the_sweep_reports():
    sweep = R.rate_sweep(m=[1], basis=["mamba"], strategy=["heaviside"], reference=False, n_max=4, trials=3,
                         samples=256, sharpness=200.0, progress=False, device="cpu")
    u = sweep.unit(1, "mamba", "heaviside")
    l2, floor = sweep.arrays[(1, "mamba", "heaviside")]
    assert np.all(floor > 1e-6) and np.allclose(l2[:, 1], floor)                     # the |w| floor
    assert u["floor_n"] == 2 and "floor set by L and |w|" in u["verdict"]


def test_chunking_over_trials_changes_numbers_only_by_rounding(monkeypatch):
    kw = dict(n_max=9, trials=5, samples=256, seed=2)
    whole = R.compute_unit(2, "mamba", "haar", **kw)[0]
    monkeypatch.setitem(R.CHUNK_BYTES, "cpu", 1)                                    # one trial per chunk
    np.testing.assert_allclose(R.compute_unit(2, "mamba", "haar", **kw)[0], whole, rtol=1e-13, atol=0)


# --- store: reuse and resume --------------------------------------------------------------------------------------

def test_sweep_reuses_stored_units_and_resumes_after_a_lost_unit(tmp_path):
    db = tmp_path / "runs.sqlite"
    kw = dict(m=[1, 2], basis=["s4d", "mamba"], n_max=9, trials=3, samples=256, store=db, progress=False,
              device="cpu")
    first = R.rate_sweep(**kw)
    assert not any(u["reused"] for u in first.units) and len(first.units) == 10
    with Store(db) as s:
        assert len(s) == 10
        lost = first.unit(2, "mamba", "haar")
        cfg = R.unit_config(2, "mamba", "haar", signal="piecewise", n_max=9, trials=3, samples=256, seed=0,
                            sharpness=None, time="pe", device="cpu", learned_n=[], learned_steps=600,
                            learned_samples=128, learned_restarts=8)
        assert Store.key(cfg) == lost["key"]
        assert s.delete(cfg)                                                      # as if killed before it
    second = R.rate_sweep(**kw)
    assert [u["reused"] for u in second.units] == [(u["m"], u["basis"], u["strategy"]) != (2, "mamba", "haar")
                                                   for u in second.units]
    for key, (l2, floor) in first.arrays.items():
        np.testing.assert_array_equal(second.arrays[key][0], l2)
    third = R.rate_sweep(**{**kw, "trials": 4})                                    # a new config is new work
    assert not any(u["reused"] for u in third.units)


# --- Cor. 1 at small sizes --------------------------------------------------------------------------------------

def test_cor1_rates_at_small_size():
    sweep = R.rate_sweep(m=[1, 2, 3], basis=["s4d", "mamba"], strategy=["fourier", "haar"], n_max=32, trials=12,
                         samples=1024, progress=False, device="cpu")
    for m in (1, 2, 3):
        p = sweep.unit(m, "s4d", "fourier")["fit"]
        assert abs(p["estimate"] + 1) <= 0.15, (m, p)
        c_haar = sweep.unit(m, "haar", "best")["fit"]["estimate"]
        assert c_haar <= 1.25 * m, (m, c_haar)
        mh = sweep.unit(m, "mamba", "haar")["fit"]
        if mh["estimate"] is not None:
            assert mh["estimate"] <= 1.25 * 3 * m, (m, mh)
    assert sweep.unit(1, "mamba", "haar")["fit"]["estimate"] > 1.5 * sweep.unit(1, "haar", "best")["fit"]["estimate"]
    # over the same atoms, Mamba-Haar's c is three times Haar's: it tracks Haar at three times the N
    ratios = [sweep.unit(m, "mamba", "haar").get("c_ratio") for m in (1, 2, 3)]
    assert any(r is not None for r in ratios)
    assert all(r == pytest.approx(3.0, rel=1e-3) for r in ratios if r is not None)
    rows = sweep.csv_rows()
    assert len(rows) == 3 * 4 * 32 and rows[0][:4] == [1, "s4d", "fourier", 1]


def test_a_sweep_killed_mid_way_keeps_its_finished_units_and_resumes(tmp_path, monkeypatch):
    db = tmp_path / "runs.sqlite"
    kw = dict(m=[1], basis=["s4d", "mamba"], n_max=6, trials=2, samples=128, store=db, progress=False,
              device="cpu")
    real, calls = R.compute_unit, []

    def dies_on_third(*a, **k):
        calls.append(a[:3])
        if len(calls) == 3:
            raise KeyboardInterrupt                                              # killed while on unit 3
        return real(*a, **k)

    monkeypatch.setattr(R, "compute_unit", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        R.rate_sweep(**kw)
    with Store(db) as s:
        assert len(s) == 2                                                       # units 1-2, each committed
    monkeypatch.setattr(R, "compute_unit", real)
    resumed = R.rate_sweep(**kw)
    assert [u["reused"] for u in resumed.units] == [True, True, False, False, False]


def test_recovered_time_gives_the_same_mamba_curves_as_positional_encoding():
    kw = dict(n_max=9, trials=2, samples=128, seed=3)
    pe = R.compute_unit(2, "mamba", "haar", time="pe", **kw)[0]
    rec = R.compute_unit(2, "mamba", "haar", time="recover", **kw)[0]
    np.testing.assert_allclose(rec, pe, rtol=1e-9, atol=1e-13)
