"""Runs that survive: a sweep interrupted mid-run (in process, or a killed subprocess) resumes from its checkpoint
and ends bit for bit where an uninterrupted sweep ends; finished runs are reused from the store."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from approx.store import Store
from signals.tasks import make_task
from ssm.models import build, make_model_config
from ssm.training import Recipe, Run, run_sweep
from ssm.training.data import GroupData
from ssm.training.ensemble import EnsembleTrainer
from ssm.training.graph import WARMUP_STEPS

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
RECIPE = Recipe(epochs=3, batch_size=4, train_size=20, val_size=8, test_size=12)


def runs():
    task = make_task("keep-nth", length=6, nth=2, vocab=7)
    return ([Run(task, make_model_config("mamba", d=4, N=2, pe=True), RECIPE, s) for s in (0, 1)]
            + [Run(task, make_model_config("s4d", d=4, N=2), RECIPE, 0)])


def same(a, b):
    """Two sweeps' results agree bit for bit: metrics (but wall time), curves and weights."""
    for x, y in zip(a, b):
        assert x["record"]["key"] == y["record"]["key"]
        assert x["record"]["metrics"] == y["record"]["metrics"]
        assert x["arrays"].keys() == y["arrays"].keys()
        for k in x["arrays"]:
            assert np.array_equal(x["arrays"][k], y["arrays"][k], equal_nan=True), k


class Interrupt(Exception):
    pass


def crash_at(monkeypatch, n: int, error):
    """Make the n-th training step of the process raise ``error``."""
    original, calls = EnsembleTrainer.step, {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] == n:
            raise error
        original(self)

    monkeypatch.setattr(EnsembleTrainer, "step", step)
    return original


def test_interrupted_sweep_resumes_from_its_checkpoint_bit_for_bit(tmp_path, monkeypatch):
    whole = run_sweep(runs(), store=tmp_path / "whole.sqlite", device="cpu", checkpoint_every=0, progress=False)
    original = crash_at(monkeypatch, 8, Interrupt)         # the first group dies in its second epoch (5 steps each)
    path = tmp_path / "cut.sqlite"
    with pytest.raises(Interrupt):
        run_sweep(runs(), store=path, device="cpu", checkpoint_every=0, progress=False)
    with Store(path) as s:
        (_, progress), = s.checkpoints("train-group")
        assert (progress["epoch"], progress["step"]) == (1, 2) and len(s) == 0
    monkeypatch.setattr(EnsembleTrainer, "step", original)
    resumed = run_sweep(runs(), store=path, device="cpu", checkpoint_every=0, progress=False)
    same(whole, resumed)
    assert resumed[0]["record"]["group"]["resumed_from"]["step"] == 2
    again = run_sweep(runs(), store=path, device="cpu", progress=False)
    assert all(r["reused"] for r in again)
    same(whole, again)
    with Store(path) as s:
        assert s.checkpoints() == [] and len(s) == 3


def test_ctrl_c_checkpoints_before_it_stops(tmp_path, monkeypatch):
    crash_at(monkeypatch, 4, KeyboardInterrupt)
    path = tmp_path / "runs.sqlite"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs(), store=path, device="cpu", checkpoint_every=1e9, progress=False)
    with Store(path) as s:
        assert [p["step"] for _, p in s.checkpoints()] == [3]


def test_ctrl_c_inside_a_step_is_held_until_the_step_is_counted(tmp_path, monkeypatch):
    """SIGINT arriving after a step moved the device counters but before the host counted it: the checkpoint must
    still describe one consistent state, and the resumed sweep must end where an uninterrupted one ends."""
    whole = run_sweep(runs(), store=tmp_path / "whole.sqlite", device="cpu", progress=False)
    original, calls = EnsembleTrainer._step, {"n": 0}

    def step(self):
        original(self)
        calls["n"] += 1
        if calls["n"] == 7:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(EnsembleTrainer, "_step", step)
    path = tmp_path / "cut.sqlite"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs(), store=path, device="cpu", checkpoint_every=1e9, progress=False)
    with Store(path) as s:
        assert [(p["epoch"], p["step"]) for _, p in s.checkpoints()] == [(1, 2)]
    monkeypatch.setattr(EnsembleTrainer, "_step", original)
    same(whole, run_sweep(runs(), store=path, device="cpu", progress=False))


def test_a_checkpoint_cut_between_a_step_and_its_count_resumes_from_the_weights_step(tmp_path):
    """Checkpoints written before Ctrl-C was held may count one step less than the weights took; the weights'
    count (the device position) wins."""
    whole = run_sweep(runs(), store=tmp_path / "whole.sqlite", device="cpu", progress=False)
    path = tmp_path / "cut.sqlite"
    original, calls = EnsembleTrainer.step, {"n": 0}

    def step(self):
        original(self)
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt            # as a signal landing between the step and ``step_in_epoch += 1``

    EnsembleTrainer.step = step
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(runs(), store=path, device="cpu", checkpoint_every=1e9, progress=False)
    finally:
        EnsembleTrainer.step = original
    with Store(path) as s:
        assert [(p["epoch"], p["step"]) for _, p in s.checkpoints()] == [(1, 1)]
    same(whole, run_sweep(runs(), store=path, device="cpu", progress=False))


TRAIN = ["train", "keep-nth", "--model", "mamba", "--pe", "--d", "4", "--n", "2", "--length", "6", "--nth", "2",
         "--vocab", "7", "--seeds", "2", "--epochs", "8", "--batch-size", "4", "--train-size", "40", "--val-size", "8",
         "--test-size", "12", "--device", "cpu", "--no-progress", "--json"]


def cli(argv):
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    return subprocess.Popen([sys.executable, "-m", "cli.main", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_killed_training_process_resumes_and_equals_an_uninterrupted_one(tmp_path):
    cut, whole = tmp_path / "cut.sqlite", tmp_path / "whole.sqlite"
    proc = cli(TRAIN + ["--store", str(cut), "--checkpoint-every", "0"])
    reference = cli(TRAIN + ["--store", str(whole)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if cut.exists():
            try:
                with Store(cut) as s:
                    seen = s.checkpoints("train-group")
            except ValueError:                             # the store is still being created
                seen = None
            if seen and seen[0][1]["epoch"] >= 2:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {proc.stderr.read()}"
    out, err = reference.communicate(timeout=180)
    assert reference.returncode == 0, err
    resumed = cli(TRAIN + ["--store", str(cut)])
    out2, err2 = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err2
    a, b = json.loads(out)["metrics"], json.loads(out2)["metrics"]
    for ra, rb in zip(a["runs"], b["runs"]):
        assert {k: v for k, v in ra.items() if k != "reused"} == {k: v for k, v in rb.items() if k != "reused"}
    with Store(whole) as s1, Store(cut) as s2:
        configs = dict(s1.configs("train"))
        for r in a["runs"]:
            x, y = s1.get(configs[r["key"]])[1], s2.get(configs[r["key"]])[1]
            assert all(np.array_equal(x[k], y[k], equal_nan=True) for k in x)
        assert s2.checkpoints() == []
        assert s2.get(configs[a["runs"][0]["key"]])[0]["group"]["resumed_from"]["epoch"] >= 2


def three_groups():
    return runs() + [Run(make_task("keep-nth", length=5, nth=2, vocab=7), make_model_config("transformer", d=4),
                         RECIPE, 2)]


def test_groups_trained_side_by_side_end_as_they_end_alone(tmp_path):
    """Interleaving the groups step by step (two live at a time, a third waiting) changes nothing but the order."""
    alone = run_sweep(three_groups(), device="cpu", progress=False)
    for k in (2, 3):
        same(alone, run_sweep(three_groups(), store=tmp_path / f"side-{k}.sqlite", device="cpu", concurrent=k,
                              progress=False))


def test_ctrl_c_checkpoints_every_group_in_progress_and_the_sweep_resumes(tmp_path, monkeypatch):
    whole = run_sweep(three_groups(), device="cpu", progress=False)
    original = crash_at(monkeypatch, 4, KeyboardInterrupt)     # steps alternate: group 1, 2, 1, then 2 is cut
    path = tmp_path / "cut.sqlite"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(three_groups(), store=path, device="cpu", checkpoint_every=1e9, concurrent=2, progress=False)
    with Store(path) as s:
        assert sorted(p["step"] for _, p in s.checkpoints()) == [1, 2] and len(s) == 0
    monkeypatch.setattr(EnsembleTrainer, "step", original)
    same(whole, run_sweep(three_groups(), store=path, device="cpu", concurrent=2, progress=False))


def test_concurrent_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="concurrent must be an integer ≥ 1"):
        run_sweep(runs(), device="cpu", concurrent=0, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA streams need a GPU")
def test_groups_on_their_own_cuda_streams_end_as_they_end_alone(tmp_path):
    """On a GPU the interleaved groups run on separate streams, each captured in its own CUDA graph; their results
    match the groups trained one after the other (to float32 rounding: the order of kernels across streams is free,
    the arithmetic of each group is not)."""
    alone = run_sweep(three_groups(), device="cuda", progress=False)
    side = run_sweep(three_groups(), store=tmp_path / "side.sqlite", device="cuda", concurrent=3, progress=False)
    for x, y in zip(alone, side):
        assert x["record"]["metrics"]["steps"] == y["record"]["metrics"]["steps"]
        for k in x["arrays"]:
            np.testing.assert_allclose(x["arrays"][k], y["arrays"][k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_the_step_runs_past_an_epochs_last_batch_without_indexing_out_of_range():
    """Capturing the step in a CUDA graph first runs it a few times and then undoes those steps; a run resumed at
    an epoch's last step ran them past the end of the epoch's batch order, which indexed out of range."""
    run = runs()[0]
    data = GroupData([run.task] * 2, RECIPE)
    model = build(run.model, vocab_size=run.task.vocab_size, num_classes=run.task.num_classes, length=data.length)
    trainer = EnsembleTrainer(model, data, RECIPE, [0, 1], graph=False)
    trainer._start_epoch()
    trainer.position.fill_(RECIPE.steps_per_epoch - 1)
    for _ in range(WARMUP_STEPS):
        trainer._step()
    assert int(trainer.position) == RECIPE.steps_per_epoch - 1 + WARMUP_STEPS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("graph", [False, True])
def test_a_run_resumed_at_an_epochs_last_step_ends_as_an_uninterrupted_one(tmp_path, graph):
    whole = run_sweep(runs()[:2], store=tmp_path / "whole.sqlite", device="cuda", graph=graph, progress=False)
    path = tmp_path / "cut.sqlite"
    original, calls = EnsembleTrainer.step, {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] == 2 * RECIPE.steps_per_epoch:
            raise KeyboardInterrupt                 # before the second epoch's last step
        original(self)

    EnsembleTrainer.step = step
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sweep(runs()[:2], store=path, device="cuda", graph=graph, checkpoint_every=1e9, progress=False)
    finally:
        EnsembleTrainer.step = original
    with Store(path) as s:
        assert [(p["epoch"], p["step"]) for _, p in s.checkpoints()] == [(1, RECIPE.steps_per_epoch - 1)]
    same(whole, run_sweep(runs()[:2], store=path, device="cuda", graph=graph, progress=False))
