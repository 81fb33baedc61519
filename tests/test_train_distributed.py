"""Sharding over processes: ``torchrun --nproc_per_node=2`` with the gloo backend on the CPU trains each ensemble
group once, in one store, and only rank 0 reports. (``--`` ends torchrun's own options: without it torchrun reads
``--d`` and ``--n`` as abbreviations of its options.)"""
import json
import os
import subprocess
import sys
from pathlib import Path

from approx.store import Store

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["reproduce", "table-a3", "--lengths", "10", "--d", "8", "--n", "8", "32", "--seeds", "1", "--epochs", "1",
        "--batch-size", "8", "--train-size", "16", "--val-size", "8", "--test-size", "8", "--device", "cpu",
        "--no-progress", "--json"]


def test_two_gloo_processes_share_the_groups_of_a_sweep(tmp_path):
    store = tmp_path / "runs.sqlite"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "cli.main", "--", *ARGS, "--store", str(store)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(proc.stdout)                          # one report, from rank 0
    assert record["metrics"]["total"] == 4
    with Store(store) as s:
        configs = s.configs("train")
        assert len(configs) == 4 and len({k for k, _ in configs}) == 4 and s.checkpoints() == []
        shards = [s.get(c)[0]["shard"] for _, c in configs]
    assert sorted(sh["rank"] for sh in shards) == [0, 0, 1, 1] and {sh["world"] for sh in shards} == {2}
    again = subprocess.run([sys.executable, "-m", "cli.main", *ARGS, "--store", str(store)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["metrics"]["cells"] == record["metrics"]["cells"]


def test_more_processes_than_gpus_share_them(monkeypatch):
    """Process r takes GPU LOCAL_RANK mod the GPUs, so three processes can share one GPU."""
    import torch
    from ssm.training import distributed
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", "3")
    for rank in ("0", "1", "2"):
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert distributed.device("cuda") == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert distributed.device("cuda") == torch.device("cuda", 1)
