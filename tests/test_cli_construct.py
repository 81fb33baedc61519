"""``approx construct`` through the command line: results, the user-file path, and bad input (exit 2)."""
import json

import numpy as np
import pytest
import torch

from conftest import run_cli as run
from signals.tasks import induction_heads, keep_nth, mqar, save_task_file


pytestmark = pytest.mark.usefixtures("one_thread")


def run_json(argv, capsys):
    code, out, err = run(argv + ["--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_keep_nth_table(capsys):
    code, out, err = run(["construct", "keep-nth", "--samples", "50", "--device", "cpu"], capsys)
    assert code == 0, err
    assert "accuracy             1.000000  (2300/2300 scored positions)" in out
    assert "129, 1" in out and "N = 2" in out and "50183" in out


@pytest.mark.parametrize("argv,sizes", [
    (["keep-nth", "--vocab", "10", "--length", "30", "--nth", "7", "--compressed"], {"d": 3, "N": 1}),
    (["induction", "--vocab", "5", "--length", "50", "--hard"], {"d": 10, "N": 5}),
    (["induction", "--vocab", "10", "--length", "100"], {"d": 20, "N": 10}),
    (["mqar", "--kappa", "4", "--vocab", "16", "--length", "30"], {"d": 20, "N": 4}),
    (["mqar", "--kappa", "4", "--vocab", "16", "--length", "30", "--variant", "mamba2"], {"d": 20, "N": 4}),
])
def test_json_record(argv, sizes, capsys):
    rec = run_json(["construct", *argv, "--samples", "40", "--seed", "3"], capsys)
    assert rec["accuracy"] == 1.0 and rec["metrics"]["accuracy"] == 1.0
    assert {k: rec["sizes"][k] for k in sizes} == sizes
    assert rec["seed"] == 3 and rec["config"]["samples"] == 40 and rec["config"]["task"] == argv[0]
    assert {"key", "versions", "device", "wall_s", "bound"} <= set(rec)


def test_induction_paper_bound_reported(capsys):
    rec = run_json(["construct", "induction", "--vocab", "5", "--samples", "5"], capsys)
    assert rec["bound"]["d"] == 10 and rec["bound"]["N"] == 5
    assert rec["sizes"]["parameters"] == 361


@pytest.mark.parametrize("task,batch,extra", [
    ("keep-nth", lambda: keep_nth(30, 25, 4, 12, seed=9), ["--vocab", "12", "--nth", "4"]),
    ("induction", lambda: induction_heads(30, 60, 8, hard_prob=0.5, seed=9), ["--vocab", "8"]),
    ("mqar", lambda: mqar(30, 40, 5, 20, seed=9), ["--vocab", "20", "--kappa", "5"]),
])
def test_user_file(task, batch, extra, tmp_path, capsys):
    path = save_task_file(tmp_path / "data.npz", batch())
    rec = run_json(["construct", task, *extra, "--data", str(path)], capsys)
    assert rec["accuracy"] == 1.0
    assert rec["config"]["data"] == str(path) and rec["config"]["samples"] == 30


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


GOOD = {"inputs": np.array([[0, 1, 2, 1]]), "targets": np.array([[5, 5, 5, 1]]), "mask": np.ones((1, 4), bool)}


@pytest.mark.parametrize("argv,msg", [
    (["keep-nth", "--nth", "60"], "n must be at most the sequence length T=50, got n=60"),
    (["keep-nth", "--nth", "0"], "n must be an integer ≥ 1"),
    (["keep-nth", "--vocab", "1"], "vocab must be an integer ≥ 2, got 1"),
    (["induction", "--vocab", "1"], "vocab must be an integer ≥ 2, got 1"),
    (["induction", "--vocab", "10", "--d", "19"], "d=19 is below Lemma 3's d = 2|V| = 20"),
    (["induction", "--vocab", "10", "--n", "4"], "N=4 is below Lemma 3's N = |V| = 10"),
    (["keep-nth", "--vocab", "10", "--d", "5"], "d=5 is below the 11"),
    (["mqar", "--kappa", "8", "--vocab", "16", "--d", "20"], "d=20 is below the Thm. 2 bound d = κ + |V| = 24"),
    (["mqar", "--kappa", "40", "--length", "100"], "below 3·kappa = 120"),
    (["keep-nth", "--kappa", "4"], "kappa applies to mqar only"),
    (["keep-nth", "--hard"], "hard applies to induction only"),
    (["induction", "--nth", "3"], "nth applies to keep-nth only"),
    (["induction", "--compressed"], "induction has no compressed construction"),
    (["induction", "--variant", "s4d"], "variant applies to mqar only"),
    (["keep-nth", "--samples", "0"], "--samples must be an integer ≥ 1, got 0"),
    (["keep-nth", "--seed", "-1"], "seed must be an integer ≥ 0"),
    (["keep-nth", "--length", "0"], "--length must be an integer ≥ 1, got 0"),
    ([], "Missing argument 'TASK'. Choose from: keep-nth, mqar, induction"),
    (["keep-nth", "--plot", "/no/such/dir/a.png"], "does not exist"),
    (["cubic"], "'cubic' is not one of 'keep-nth', 'mqar', 'induction'"),
    (["keep-nth", "--device", "tpu"], "Invalid value for '--device'"),
])
def test_bad_options_exit_2(argv, msg, capsys):
    code, out, err = run(["construct", *argv, "--samples", "3"] if "--samples" not in argv
                         else ["construct", *argv], capsys)
    assert code == 2
    assert err.startswith("approx: error: ") and msg in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cuda_without_gpu_exit_2(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, _, err = run(["construct", "keep-nth", "--device", "cuda", "--samples", "3"], capsys)
    assert code == 2 and "CUDA is not available" in err


@pytest.mark.parametrize("arrays,msg", [
    ({k: v for k, v in GOOD.items() if k != "targets"}, "missing array(s) 'targets'"),
    ({**GOOD, "mask": np.ones((2, 4), bool)}, "'mask' must have the shape of 'inputs' (1, 4)"),
    ({**GOOD, "inputs": np.array([0, 1, 2, 1])}, "'inputs' must have shape (samples, T)"),
    ({**GOOD, "inputs": np.array([[0, np.nan, 2, 1]])}, "'inputs' contains NaN"),
    ({**GOOD, "inputs": np.array([[0, 1, 7, 1]])}, "'inputs' tokens must lie in [0, 5)"),
    ({**GOOD, "targets": np.array([[5, 5, 5, 6]])}, "'targets' at scored positions must lie in [0, 6)"),
])
def test_malformed_file_exit_2(arrays, msg, tmp_path, capsys):
    code, _, err = run(["construct", "induction", "--vocab", "5", "--data", _npz(tmp_path, **arrays)], capsys)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_missing_and_non_npz_files_exit_2(tmp_path, capsys):
    code, _, err = run(["construct", "keep-nth", "--data", str(tmp_path / "nope.npz")], capsys)
    assert code == 2 and "does not exist" in err
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    code, _, err = run(["construct", "keep-nth", "--data", str(junk)], capsys)
    assert code == 2 and "cannot read as .npz" in err


def test_keep_nth_file_shorter_than_n_exit_2(tmp_path, capsys):
    path = save_task_file(tmp_path / "short.npz", keep_nth(4, 3, 2, 128, seed=0))
    code, _, err = run(["construct", "keep-nth", "--data", str(path)], capsys)
    assert code == 2 and "n must be at most the sequence length T=3, got n=5" in err


def test_plot_accuracy_per_position_is_written_like_any_file(tmp_path, capsys):
    png = tmp_path / "acc.png"
    code, out, err = run(["construct", "keep-nth", "--samples", "20", "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    import os
    old = os.umask(0)
    os.umask(old)
    return old


def test_accuracy_per_position_counts_add_up():
    from ssm import accuracy

    class Fixed(torch.nn.Module):          # predicts class 1 everywhere
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.ones_like(x), 3).float() + 0 * self.w

    inputs = torch.zeros(3, 4, dtype=torch.long)
    targets = torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1], [2, 1, 0, 1]])
    mask = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1], [1, 0, 0, 1]], dtype=torch.bool)
    for batch_size in (1, 2, 5):
        acc = accuracy(Fixed(), inputs, targets, mask, batch_size=batch_size)
        assert acc["per_position"] == {"correct": [1, 1, 1, 3], "scored": [2, 2, 1, 3]}
        assert (acc["correct"], acc["scored"]) == (6, 8)
        assert acc["sequences_all_correct"] == pytest.approx(1 / 3)    # only row 1 has every scored position right


def test_the_example_sequences_file_is_solved(capsys):
    import pathlib
    path = pathlib.Path(__file__).parents[1] / "examples" / "mqar_sequences.npz"
    code, out, err = run(["construct", "mqar", "--kappa", "8", "--data", str(path), "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["metrics"]["accuracy"] == 1.0 and rec["metrics"]["scored"] == 32 * 8


def test_a_trained_run_scored_on_its_own_test_set_gives_the_trainers_accuracy(tmp_path, capsys):
    """construct --trained on the run's test sequences (written as a user's .npz) must reproduce the accuracy the
    trainer recorded: two independent paths (the trainer's loss/accuracy pass and ssm.evaluate.accuracy)."""
    from ssm.training.runs import load_trained

    db = str(tmp_path / "runs.sqlite")
    code, out, err = run(["train", "mqar", "--model", "mamba", "--kappa", "2", "--vocab", "6", "--length", "12",
                          "--d", "8", "--n", "2", "--epochs", "2", "--train-size", "64", "--val-size", "16",
                          "--test-size", "40", "--batch-size", "8", "--device", "cpu", "--no-progress",
                          "--store", db, "--seeds", "1", "--json"], capsys)
    assert code == 0, err
    (member,) = json.loads(out)["metrics"]["runs"]
    trained, _, _ = load_trained(db, member["key"])
    test = trained.task.generate(40, trained.recipe.data_seeds()["test"])
    path = tmp_path / "test.npz"
    np.savez(path, inputs=test.inputs.numpy(), targets=test.targets.numpy(), mask=test.mask.numpy())
    code, out, err = run(["construct", "mqar", "--trained", member["key"], "--store", db, "--data", str(path),
                          "--json"], capsys)
    assert code == 0, err
    rec = json.loads(out)
    assert rec["config"]["kappa"] == 2 and rec["config"]["vocab"] == 6 and rec["config"]["length"] == 12
    assert rec["trained"]["key"] == member["key"]
    assert rec["trained"]["metrics"]["accuracy"] == pytest.approx(member["accuracy"], abs=1e-6)
    assert rec["trained"]["metrics"]["scored"] == 40 * 2


@pytest.mark.parametrize("argv,msg", [
    (["construct", "mqar", "--trained", "0123456789abcdef"], "does not exist"),
    (["construct", "mqar", "--store", "x.sqlite"], "--store has no effect without --trained"),
])
def test_trained_bad_input_exits_2(argv, msg, tmp_path, capsys):
    argv = [a if a != "x.sqlite" else str(tmp_path / "x.sqlite") for a in argv]
    if "--store" not in argv:
        argv += ["--store", str(tmp_path / "none.sqlite")]
    code, _, err = run(argv + ["--samples", "3"], capsys)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1
