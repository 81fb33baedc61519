"""``approx fit`` through the command line: output, JSON, plots, help, and every bad input → exit 2 with one line
on stderr and no traceback (docs/design.md §4)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli as run
import torch


ROOT = Path(__file__).resolve().parents[1]


def test_default_command_prints_a_table(capsys):
    code, out, err = run(["fit", "--signal", "piecewise", "--m", "3", "--basis", "mamba"], capsys)
    assert code == 0 and err == ""
    for key in ("mamba / haar", "l2_sq", "N used", "sharpness |w|", "atoms (j,k)", "Heavisides at", "wall time"):
        assert key in out
    assert "(asked 32)" in out


def test_json_output_is_a_record(capsys):
    code, out, _ = run(["fit", "--basis", "mamba", "--strategy", "heaviside", "--n", "4", "--json"], capsys)
    assert code == 0
    rec = json.loads(out)
    assert rec["metrics"]["l2_sq"] < 1e-4 and rec["metrics"]["n_used"] == 4
    assert rec["config"]["strategy"] == "heaviside" and rec["config"]["sharpness"] == "auto"
    assert {"versions", "device", "wall_s", "key", "params"} <= set(rec)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_plot_is_written_by_suffix(tmp_path, capsys, suffix, magic):
    path = tmp_path / f"fit{suffix}"
    code, _, _ = run(["fit", "--basis", "s4d", "--n", "9", "--samples", "256", "--plot", str(path)], capsys)
    assert code == 0 and path.read_bytes().startswith(magic)


def test_user_file_with_and_without_resampling(tmp_path, capsys):
    path = tmp_path / "sig.csv"
    path.write_text("\n".join(["1"] * 100 + ["-2"] * 28) + "\n")
    code, out, _ = run(["fit", "--signal", "file", "--path", str(path), "--basis", "haar", "--n", "4"], capsys)
    assert code == 0 and "L = 128" in out
    code, out, _ = run(["fit", "--signal", "file", "--path", str(path), "--resample", "--samples", "256",
                        "--basis", "mamba", "--strategy", "heaviside", "--n", "2", "--json"], capsys)
    rec = json.loads(out)
    assert code == 0 and rec["config"]["samples"] == 256 and rec["metrics"]["l2_sq"] < 1e-24


def test_help_states_every_option_and_default(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "fit" in out
    code, out, _ = run(["fit", "--help"], capsys)
    assert code == 0
    out = " ".join(out.split())                      # click wraps the help to the terminal's width
    for option in ("--signal", "--m", "--samples", "--seed", "--basis", "--strategy", "--n", "--time",
                   "--sharpness", "--device", "--json", "--plot", "--path", "--resample"):
        assert option in out
    for default in ("default: piecewise", "default: 3", "default: (4096", "default: mamba", "default: 32",
                    "default: pe", "default: auto", "mamba: haar"):
        assert default in out


BAD = {
    "negative m": (["--m", "-1"], "-1"),
    "n zero": (["--n", "0"], "got 0"),
    "unknown basis": (["--basis", "wavelet"], "wavelet"),
    "unknown strategy": (["--basis", "s4d", "--strategy", "zigzag"], "zigzag"),
    "foreign strategy": (["--basis", "mamba", "--strategy", "fourier"], "'fourier'"),
    "sharpness zero": (["--sharpness", "0"], "sharpness"),
    "sharpness negative": (["--sharpness", "-5"], "-5"),
    "sharpness text": (["--sharpness", "sharp"], "sharp"),
    "file without path": (["--signal", "file"], "--path"),
    "missing file": (["--signal", "file", "--path", "{tmp}/nope.csv"], "nope.csv"),
    "empty file": (["--signal", "file", "--path", "{tmp}/empty.csv"], "empty.csv"),
    "non-numeric file": (["--signal", "file", "--path", "{tmp}/text.csv"], "'abc'"),
    "nan file": (["--signal", "file", "--path", "{tmp}/nan.npy"], "NaN"),
    "samples without resample": (["--signal", "file", "--path", "{tmp}/ok.csv", "--samples", "64"], "--resample"),
    "plot suffix": (["--plot", "{tmp}/fit.pdf"], "fit.pdf"),
    "haar needs power of two": (["--samples", "1000"], "--samples = 1000"),
    "n too large": (["--basis", "fourier", "--n", "5000"], "--n = 5000 exceeds the 4095 fourier/partial"),
    "n capped for mamba/haar": (["--basis", "mamba", "--n", "100000"], "--n = 100000 exceeds the 12288 mamba/haar"),
    "n capped for heaviside": (["--strategy", "heaviside", "--n", "5000"], "--n = 5000 exceeds the 4096"),
    "path with piecewise": (["--path", "{tmp}/ok.csv"], "--path has no effect with --signal piecewise"),
    "m with file": (["--signal", "file", "--path", "{tmp}/ok.csv", "--m", "5"], "--m has no effect with --signal file"),
    "resample without file": (["--resample"], "--resample has no effect with --signal piecewise"),
    "j with step": (["--signal", "step", "--j", "3"], "--j has no effect with --signal step"),
    "sharpness with s4d": (["--basis", "s4d", "--sharpness", "100"], "--sharpness has no effect with --basis s4d"),
    "plot folder missing": (["--plot", "{tmp}/no/such/fit.png"], "does not exist"),
    "plot is a folder": (["--plot", "{tmp}/adir.png"], "is a directory"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "text.csv").write_text("1\nabc\n")
    (tmp_path / "ok.csv").write_text("1\n2\n3\n4\n")
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan, 2.0]))
    (tmp_path / "adir.png").mkdir()
    args, needle = BAD[case]
    code, out, err = run(["fit"] + [a.replace("{tmp}", str(tmp_path)) for a in args], capsys)
    assert code == 2
    assert err.startswith("approx: error:") and err.count("\n") == 1 and needle in err
    assert "Traceback" not in err + out


def test_cuda_without_cuda_is_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(["fit", "--device", "cuda"], capsys)
    assert code == 2 and "cuda" in err and err.count("\n") == 1


def test_real_entry_point_reports_bad_input_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "cli.main", "fit", "--m", "-3"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["approx: error: --m must be an integer ≥ 0, got -3"]


def test_refused_plot_paths_leave_no_folder_and_no_work(tmp_path, capsys, monkeypatch):
    """A plot path is checked before the fit runs, and no folder is ever created for it."""
    import approx.fitting
    monkeypatch.setattr(approx.fitting, "check_fit_size", lambda *a: pytest.fail("the fit ran"))
    code, _, err = run(["fit", "--plot", str(tmp_path / "new" / "fit.png")], capsys)
    assert code == 2 and not (tmp_path / "new").exists()


def test_plot_file_mode_follows_the_umask(tmp_path, capsys):
    import os
    old = os.umask(0o022)
    try:
        path = tmp_path / "fit.png"
        code, _, _ = run(["fit", "--basis", "s4d", "--n", "5", "--samples", "64", "--plot", str(path)], capsys)
    finally:
        os.umask(old)
    assert code == 0 and (path.stat().st_mode & 0o777) == 0o644


def test_json_is_compact_and_names_the_torch_device(capsys):
    code, out, _ = run(["fit", "--basis", "s4d", "--n", "32", "--samples", "256", "--json", "--device", "cpu"], capsys)
    rec = json.loads(out)
    assert code == 0 and len(out.splitlines()) == len(rec) + 2          # one line per top-level field
    assert rec["device"] == "cpu" and rec["device_name"] and rec["config"]["device"] == "cpu"


def test_table_says_the_torch_device_and_an_ill_conditioned_basis(capsys):
    code, out, _ = run(["fit", "--basis", "s4d", "--strategy", "s4d-lin", "--n", "48", "--device", "cpu"], capsys)
    assert code == 0 and "s on cpu" in out
    assert "condition number" in out and "nearly dependent" in out


def test_example_signal_file_of_the_readme_fits(capsys):
    code, out, _ = run(["fit", "--signal", "file", "--path", str(ROOT / "examples" / "my_signal.csv"), "--basis",
                        "s4d", "--strategy", "best", "--n", "32", "--json"], capsys)
    assert code == 0 and json.loads(out)["config"]["signal"] == "file"
