"""signals: the seeded generators, the Haar/step/needle shapes, and a user's file (docs/design.md §1)."""
import numpy as np
import pytest
import torch

import signals
from signals import generate, haar, load_signal, needle, piecewise, piecewise_params, step
from signals.grid import midpoints, norm_sq


def test_piecewise_matches_its_breakpoints_and_levels():
    L, m = 512, 5
    x = piecewise(m, L, seed=3)
    breaks, levels = piecewise_params(m, seed=3)
    assert np.all(np.diff(breaks) >= 0) and np.all((breaks > 0) & (breaks < 1))
    s = midpoints(L).numpy()
    for q in range(m + 1):
        lo = 0.0 if q == 0 else breaks[q - 1]
        hi = 1.0 if q == m else breaks[q]
        inside = (s >= lo) & (s < hi)
        assert np.allclose(x.numpy()[inside], levels[q])
    jumps = int((x[1:] != x[:-1]).sum())
    assert jumps == m          # seed 3 puts no two breakpoints in one cell


def test_piecewise_is_reproducible_and_batched_trials_are_independent_of_batch_size():
    one = piecewise(3, 256, seed=7)
    assert torch.equal(one, piecewise(3, 256, seed=7))
    five = piecewise(3, 256, seed=7, batch=5)
    two = piecewise(3, 256, seed=7, batch=2)
    assert five.shape == (5, 256)
    assert torch.equal(five[0], one) and torch.equal(five[:2], two)
    assert not torch.equal(five[1], five[2])
    assert not torch.equal(one, piecewise(3, 256, seed=8))
    br, lv = piecewise_params(3, seed=7, batch=5)
    assert br.shape == (5, 3) and lv.shape == (5, 4)


def test_piecewise_without_jumps_is_constant():
    x = piecewise(0, 64, seed=1)
    assert torch.all(x == x[0])


@pytest.mark.parametrize("kwargs, match", [({"m": -1}, "m must be an integer ≥ 0, got -1"), ({"m": 2.5}, "m "),
                                            ({"m": 2, "seed": -1}, "seed"), ({"m": 2, "batch": 0}, "batch")])
def test_piecewise_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        piecewise(L=16, **kwargs)


def test_haar_wavelet_shape_norm_and_sign():
    L = 64
    psi = haar(2, 1, L)                         # support [1/4, 1/2): + on [1/4, 3/8), − on [3/8, 1/2)
    s = midpoints(L)
    assert torch.all(psi[(s > 0.25) & (s < 0.375)] == 2.0)
    assert torch.all(psi[(s > 0.375) & (s < 0.5)] == -2.0)
    assert torch.all(psi[(s < 0.25) | (s > 0.5)] == 0)
    assert norm_sq(psi).item() == pytest.approx(1.0, abs=1e-15)
    assert norm_sq(haar(5, 31, L)).item() == pytest.approx(1.0, abs=1e-15)   # finest scale the grid holds


@pytest.mark.parametrize("j, k, L, match", [(2, 4, 64, "k must be < 2\\^j = 4"), (-1, 0, 64, "j must be"),
                                           (6, 0, 64, "scale j = 6 needs")])
def test_haar_rejects_bad_indices(j, k, L, match):
    with pytest.raises(ValueError, match=match):
        haar(j, k, L)


def test_step_and_needle():
    assert torch.equal(step(8, at=0.5), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1], dtype=torch.float64))
    assert int(step(1000, at=0.3).sum()) == 700
    x = needle(1000, center=0.3, width=0.01)
    assert int(x.sum()) == 10 and x[295:305].eq(1).all()
    with pytest.raises(ValueError, match="covers no grid point"):
        needle(10, center=0.5, width=1e-4)
    with pytest.raises(ValueError, match="width"):
        needle(10, width=0)


def test_file_roundtrip_csv_with_header_and_npy(tmp_path):
    values = np.array([0.5, -1.0, 2.0, 3.25])
    (tmp_path / "a.csv").write_text("value\n" + "\n".join(map(str, values)) + "\n\n# comment\n")
    np.save(tmp_path / "b.npy", values)
    np.save(tmp_path / "c.npy", values[:, None])
    for name in ("a.csv", "b.npy", "c.npy"):
        assert torch.equal(load_signal(tmp_path / name), torch.tensor(values, dtype=torch.float64))


def test_file_resampling_is_zero_order_hold(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    x = load_signal(tmp_path / "x.npy", 6)
    assert x.tolist() == [1, 1, 2, 2, 3, 3]
    x, info = generate("file", path=tmp_path / "x.npy", samples=12, resample=True)
    assert x.shape == (12,) and info["resampled"]
    x, info = generate("file", path=tmp_path / "x.npy")
    assert x.shape == (3,) and info["file_samples"] == 3


@pytest.mark.parametrize("name, content, match", [
    ("missing.csv", None, "does not exist"),
    ("empty.csv", "", "at least 2 samples"),
    ("text.csv", "1\nabc\n", "non-numeric value on line 2: 'abc'"),
    ("nan.csv", "1\n2\nnan\n", "NaN or infinite"),
    ("inf.csv", "1\ninf\n", "NaN or infinite"),
    ("two.csv", "1,2\n3,4\n", "one column"),
    ("x.txt", "1\n2\n", "must end in .npy or .csv"),
    ("bad.npy", "not a numpy file", "cannot read"),
])
def test_file_defects_raise_one_line_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        load_signal(path)
    assert "\n" not in str(err.value)


def test_npy_defects(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    np.save(tmp_path / "m.npy", np.ones((3, 2)))
    np.save(tmp_path / "n.npy", np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="real numbers"):
        load_signal(tmp_path / "s.npy")
    with pytest.raises(ValueError, match="one column"):
        load_signal(tmp_path / "m.npy")
    with pytest.raises(ValueError, match="NaN"):
        load_signal(tmp_path / "n.npy")


def test_generate_by_name_and_unknown_name():
    x, info = generate("piecewise", m=2, samples=128, seed=4)
    assert torch.equal(x, piecewise(2, 128, 4)) and len(info["breakpoints"]) == 2
    assert torch.equal(generate("haar", j=1, k=0, samples=16)[0], haar(1, 0, 16))
    assert generate("step", samples=10)[0].shape == (10,)
    with pytest.raises(ValueError, match="signal must be one of"):
        generate("chirp")
    with pytest.raises(ValueError, match="path must be given for the 'file' signal"):
        generate("file")
    assert "grid" in dir(signals) and signals.grid.midpoints(2).tolist() == [0.25, 0.75]
