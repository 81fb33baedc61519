"""``approx train`` and ``approx reproduce`` through the command line: records, tables, plots, bad input (exit 2)."""
import json
import sqlite3

import pytest

from conftest import run_cli as run
from approx.store import Store

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--epochs", "2", "--batch-size", "4", "--train-size", "16", "--val-size", "8", "--test-size", "8",
        "--device", "cpu", "--no-progress"]
TRAIN = ["train", "keep-nth", "--model", "mamba", "--pe", "--d", "4", "--n", "2", "--length", "6", "--nth", "2",
         "--vocab", "7", *TINY]


def test_train_json_record_holds_parameters_and_accuracy_and_reuses_the_store(tmp_path, capsys):
    db, png = tmp_path / "runs.sqlite", tmp_path / "curves.png"
    code, out, err = run(TRAIN + ["--seeds", "2", "--lr", "0.03", "0.01", "--store", str(db), "--json", "--plot",
                                  str(png)], capsys)
    assert code == 0, err
    rec = json.loads(out)
    met = rec["metrics"]
    assert met["parameters"] == 7 * 3 + 7 * 4 + 4 * 2 + 4 * (1 + 4) + 1 * 4 + 4 + 5 * 4
    assert 0 <= met["accuracy"] <= 1 and len(met["runs"]) == 4 and met["seeds"] == 4
    assert [(r["seed"], r["lr"]) for r in met["runs"]] == [(0, 0.03), (1, 0.03), (0, 0.01), (1, 0.01)]
    assert rec["recipe_deviation"].startswith("recipe differs from App. D.1: epochs 2 (paper 600)")
    assert png.stat().st_size > 0
    code, out2, _ = run(TRAIN + ["--seeds", "2", "--lr", "0.03", "0.01", "--store", str(db)], capsys)
    assert code == 0 and out2.count("stored") == 4
    assert f"test accuracy {met['accuracy']:.4f}" in out2


def test_train_every_model_prints_its_table(tmp_path, capsys):
    for extra in (["--model", "s4d", "--d", "4", "--n", "2"], ["--model", "transformer", "--d", "4"]):
        code, out, err = run(["train", "keep-nth", "--length", "6", "--nth", "2", "--vocab", "7", *TINY, "--seeds",
                              "1", "--no-store", *extra], capsys)
        assert code == 0, err
        assert "test accuracy" in out and "recipe differs from App. D.1" in out


def test_a_plateau_stop_is_shown_per_member_and_named_in_the_deviation_line(capsys):
    code, out, err = run(TRAIN + ["--seeds", "2", "--epochs", "4", "--patience", "1", "--min-gain", "5", "--no-store"],
                         capsys)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[4:6] for r in rows] == [["2", "plateau"], ["2", "plateau"]]          # epochs, stop
    assert "stop after 1 epochs without a validation-accuracy gain of 5 (paper: no such stop)" in out
    code, out, err = run(TRAIN + ["--patience", "-1", "--no-store"], capsys)
    assert code == 2 and "--patience must be an integer ≥ 0" in err


def test_reproduce_prints_paper_beside_lab_with_verdicts_and_agreement(tmp_path, capsys):
    argv = ["reproduce", "table-a1", "--lengths", "10", "--models", "mamba+pe", "s4d+pe", "--d", "8", "--n", "8",
            "--seeds", "1", *TINY, "--store", str(tmp_path / "runs.sqlite")]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[2].startswith("recipe differs from App. D.1: epochs 2 (paper 600)")
    row = next(line for line in lines if line.startswith("mamba+pe"))
    assert "2.2k /   2176" in row and "1.00 (0.00)" in row and "107 /" in row
    assert any(line.startswith("agreement: ") and "of 2 cells" in line for line in lines)
    code, out, _ = run(argv + ["--json"], capsys)
    rec = json.loads(out)
    assert rec["metrics"]["total"] == 2 and {c["variant"] for c in rec["metrics"]["cells"]} == {"mamba+pe", "s4d+pe"}
    assert all("note" in c for c in rec["metrics"]["cells"] if not c["agree"])


def test_reproduce_table1_has_its_five_columns(tmp_path, capsys):
    code, out, err = run(["reproduce", "table1", "--seeds", "1", "--epochs", "1", "--batch-size", "16",
                          "--train-size", "16", "--val-size", "4", "--test-size", "4", "--device", "cpu",
                          "--no-progress", "--no-store", "--json"], capsys)
    assert code == 0, err
    cells = json.loads(out)["metrics"]["cells"]
    assert [c["variant"] for c in cells] == ["mamba+pe", "mamba", "s4d", "s4d+pe", "transformer"]
    assert [c["measured"]["parameters"] for c in cells] == [9152, 9280, 8840, 8712, 6720]
    assert [c["paper"]["epochs"] for c in cells] == [241, 600, 600, 600, 17]


def test_reproduce_fig1_summary_and_plot(tmp_path, capsys):
    png = tmp_path / "fig1.png"
    code, out, err = run(["reproduce", "fig1", "--lengths", "6", "8", "--d", "4", "--seeds", "1", "--samples", "5",
                          *TINY, "--no-store", "--plot", str(png)], capsys)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines() if line.startswith(("mamba ", "s4d "))]
    assert [(r[0], r[1]) for r in rows] == [("mamba", "6"), ("mamba", "8"), ("s4d", "6"), ("s4d", "8")]
    assert all(0 <= float(x) <= 1 for r in rows for x in r[2:])
    assert png.stat().st_size > 0


def _foreign_store(tmp_path):
    path = tmp_path / "old.sqlite"
    with Store(path) as s:
        s.put({"kind": "k"}, {"v": 1})
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '7' WHERE name = 'format'")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("argv,msg", [
    (["train", "copy"], "Invalid value for 'TASK'"),
    (["train", "keep-nth", "--model", "rnn"], "Invalid value for '--model'"),
    (["train", "keep-nth", "--nth", "12", "--length", "10"], "--nth must be at most the sequence length T=10"),
    (["train", "keep-nth", "--pe", "--d", "1"], "--d must be at least 2 with positional encoding"),
    (["train", "keep-nth", "--model", "transformer", "--pe"], "pe does not apply to model transformer"),
    (["train", "keep-nth", "--model", "transformer", "--n", "4"], "--n does not apply to model transformer"),
    (["train", "keep-nth", "--kappa", "4"], "kappa does not apply to task keep-nth"),
    (["train", "keep-nth", "--batch-size", "0"], "--batch-size must be an integer ≥ 1"),
    (["train", "keep-nth", "--train-size", "8"], "--batch-size must not exceed train_size=8"),
    (["train", "keep-nth", "--plot", "curves.txt"], "must end in .png or .svg"),
    (["reproduce", "table-a1", "--lengths", "30"], "lengths [30] not in table-a1"),
    (["reproduce", "table1", "--plot", "x.png"], "--plot applies to the figures only"),
])
def test_bad_input_is_one_line_and_exit_2(argv, msg, tmp_path, capsys):
    code, out, err = run(argv + ["--no-store", "--device", "cpu"] if argv[1] != "copy" else argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("approx: error: ") and err.count("\n") == 1 and msg in err, err


def test_a_store_of_another_version_is_refused_and_kept(tmp_path, capsys):
    path = _foreign_store(tmp_path)
    before = path.read_bytes()
    code, out, err = run(TRAIN + ["--store", str(path)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "was written by another version of the lab (store format 7" in err
    assert path.read_bytes() == before


@pytest.mark.parametrize("task,extra,model_fields,task_fields", [
    ("mqar", ["--model", "mamba", "--kappa", "2", "--keys", "iid"], {"conv": 4}, {"kappa": 2, "keys": "iid"}),
    ("mqar", ["--model", "mamba2", "--kappa", "3"], {"conv": 4}, {"keys": "distinct"}),
    ("mqar", ["--model", "mamba-s4d", "--kappa", "4", "--no-gate", "--conv", "2"], {"conv": 2}, {}),
    ("induction", ["--model", "mamba-dt", "--positions", "repeat"], {"conv": 4}, {"positions": "repeat"}),
    ("induction", ["--model", "mamba", "--conv", "0"], {}, {"positions": "all"}),
])
def test_train_recall_tasks_record_the_block_and_the_task_choices(task, extra, model_fields, task_fields, capsys):
    length = ["--length", "12", "--vocab", "5"] if task == "induction" else ["--length", "12", "--vocab", "6"]
    code, out, err = run(["train", task, "--d", "6", "--n", "2", *length, *TINY, "--seeds", "1", "--no-store",
                          "--json", *extra], capsys)
    assert code == 0, err
    cfg = json.loads(out)["config"]
    for k, v in model_fields.items():
        assert cfg["model"][k] == v
    if "conv" not in model_fields:
        assert "conv" not in cfg["model"]
    assert cfg["model"].get("gate", False) is (cfg["model"]["name"] == "mamba-s4d" and "--no-gate" not in extra)
    for k, v in task_fields.items():
        assert cfg["task"][k] == v


def test_mamba_with_its_convolution_learns_a_small_mqar(capsys):
    """The whole stage on a task the model can solve: κ = 2 pairs among 8 values, T = 16, 8 epochs of 1 500."""
    code, out, err = run(["train", "mqar", "--model", "mamba", "--kappa", "2", "--vocab", "8", "--length", "16",
                          "--d", "32", "--n", "4", "--epochs", "8", "--train-size", "1500", "--val-size", "100",
                          "--test-size", "300", "--lr", "0.01", "--device", "cpu", "--no-progress", "--no-store",
                          "--seeds", "1", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["metrics"]["accuracy"] >= 0.95


def test_reproduce_stored_reports_what_the_store_holds_and_trains_nothing(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "runs.sqlite")
    base = ["reproduce", "table-a1", "--lengths", "10", "--d", "8", "--n", "8", "--seeds", "1", *TINY, "--store", db]
    code, _, err = run(base + ["--models", "mamba+pe"], capsys)                 # one cell trained
    assert code == 0, err
    import ssm.training.sweep as sweep_mod

    def no_training(*args, **kwargs):
        raise AssertionError("--stored trained a run")

    monkeypatch.setattr(sweep_mod, "GroupRun", no_training)
    code, out, err = run(base + ["--stored"], capsys)
    assert code == 0, err
    assert "mamba+pe     d=8, N=8" in out and "s4d+pe" not in out
    assert "--stored: 1 of the 2 cells asked for are in the store" in out
    code, _, err = run(base + ["--stored", "--models", "s4d+pe"], capsys)
    assert code == 2 and "holds no complete cell of table-a1" in err
    code, _, err = run(["reproduce", "fig1", "--stored", *TINY], capsys)
    assert code == 2 and "--stored reads the store" in err
