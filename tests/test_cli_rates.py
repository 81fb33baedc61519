"""``approx rates`` through the command line: variadic options, outputs, the store, and bad input (exit 2)."""
import csv
import json

import pytest

from conftest import run_cli as run
from cli.rates import expand_variadic

SMALL = ["--n-max", "6", "--trials", "2", "--samples", "128", "--no-progress"]


def test_expand_variadic_rewrites_several_values_after_one_flag():
    assert expand_variadic(["--m", "1", "2", "3", "--basis", "s4d", "mamba", "--n-max", "8"]) == \
        ["--m", "1", "--m", "2", "--m", "3", "--basis", "s4d", "--basis", "mamba", "--n-max", "8"]
    assert expand_variadic(["--m", "-1", "2", "--json"]) == ["--m", "-1", "--m", "2", "--json"]
    assert expand_variadic(["--m=2", "--strategy"]) == ["--m=2", "--strategy"]
    assert expand_variadic(["--trials", "3", "--", "--m", "1"]) == ["--trials", "3", "--", "--m", "1"]


def test_json_csv_plot_and_store_reuse(tmp_path, capsys):
    db, table, png = tmp_path / "runs.sqlite", tmp_path / "rates.csv", tmp_path / "rates.png"
    argv = ["rates", "--m", "1", "2", "--basis", "s4d", "mamba", "--strategy", "fourier", "heaviside", *SMALL,
            "--store", str(db)]
    code, out, err = run(argv + ["--json", "--csv", str(table), "--plot", str(png)], capsys)
    assert code == 0, err
    rec = json.loads(out)
    units = [(u["m"], u["basis"], u["strategy"]) for u in rec["metrics"]["units"]]
    assert units == [(m, b, s) for m in (1, 2) for b, s in (("s4d", "fourier"), ("mamba", "heaviside"),
                                                            ("haar", "best"), ("fourier", "partial"))]
    assert rec["config"]["m"] == [1, 2] and rec["seed"] == 0 and "versions" in rec
    rows = list(csv.reader(table.open()))
    assert rows[0][:4] == ["m", "basis", "strategy", "N"] and len(rows) == 1 + 8 * 6
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run(argv, capsys)                                         # table, everything reused
    assert code == 0 and out.count("stored") == 8
    assert "p = -1" in out and "exact at N = m+1" in out and "c <= 2" in out


def test_learned_strategy_runs_from_the_command_line(capsys):
    code, out, err = run(["rates", "--m", "1", "--basis", "mamba", "--strategy", "learned", "--no-reference",
                          "--n-max", "4", "--trials", "2", "--learned-steps", "3", "--learned-samples", "32",
                          "--learned-restarts", "1", "--no-store", "--no-progress"], capsys)
    assert code == 0, err
    assert "learned N = 2: l2_sq < 0.001 in" in out and "a sharp edge within 2 cells of every jump" in out


@pytest.mark.parametrize("extra, needle", [
    (["--n-max", "0"], "--n-max must be an integer ≥ 1, got 0"),
    (["--trials", "0"], "--trials must be an integer ≥ 1, got 0"),
    (["--m", "-1"], "--m must be an integer ≥ 0, got -1"),
    (["--basis", "wavelet"], "'wavelet' is not one of"),
    (["--strategy", "magic"], "strategy 'magic' belongs to none of the bases"),
    (["--samples", "1000"], "power-of-two number of samples, got --samples = 1000"),
    (["--learned-n", "3"], "--learned-n has no effect without --strategy learned"),
    (["--no-store"], "--store has no effect with --no-store"),
    (["--sharpness", "-2"], "sharpness must be a positive finite number, got -2.0"),
    (["--sharpness", "sharp"], "expected 'auto' or a positive number, got 'sharp'"),
    (["--strategy", "learned", "--learned-n", "0"], "--learned-n must be an integer ≥ 1, got 0"),
    (["--strategy", "learned", "--learned-steps", "-5"], "--learned-steps must be an integer ≥ 0, got -5"),
    (["--csv", "/nonexistent-folder/x.csv"], "folder '/nonexistent-folder' does not exist"),
    (["--plot", "rates.txt"], "must end in .png or .svg"),
    (["--m"], "--m"),
])
def test_bad_input_is_one_line_and_exit_2(extra, needle, capsys, tmp_path):
    code, out, err = run(["rates", *SMALL, "--store", str(tmp_path / "s.sqlite"), *extra], capsys)
    assert code == 2
    assert err.startswith("approx: error:") and needle in err and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_corrupt_store_and_unwritable_csv_exit_2(tmp_path, capsys):
    bad = tmp_path / "runs.sqlite"
    bad.write_text("not a database " * 200)
    code, _, err = run(["rates", *SMALL, "--store", str(bad)], capsys)
    assert code == 2 and "not a usable SQLite results store" in err and err.count("\n") == 1
    code, _, err = run(["rates", *SMALL, "--no-store", "--csv", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err
