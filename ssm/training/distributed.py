"""Sharding a sweep over processes started by ``torchrun --nproc_per_node=K`` (torch.distributed).

Each process trains the ensemble groups whose index i (in the order every process computes alike) has
i mod K = its rank, writes them to the one shared store, and waits at a barrier for the others; no group is
trained twice. Without torchrun's environment (``WORLD_SIZE`` unset or 1) there is one shard.
Process r trains on ``cuda:(LOCAL_RANK mod the number of GPUs)``, so more processes than GPUs share them (several
small ensembles keep one GPU busier than one). The processes only meet at barriers, so the process group is gloo
whatever the device (NCCL refuses two ranks on one GPU).
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from kernels import resolve_device


def world_size() -> int:
    """Number of processes of this sweep (``WORLD_SIZE`` from torchrun, else 1)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> tuple:
    """Join the process group if torchrun started this process; return ``(rank, world, device)`` where
    ``device`` is this process's own GPU on CUDA."""
    world = world_size()
    if world == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = _local_gpu()
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size(), device


def finish() -> None:
    """Wait for every process of the sweep, then leave the process group (nothing without one)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def is_main() -> bool:
    """Whether this process reports the sweep (rank 0 of torchrun's ``RANK``, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


def _local_gpu() -> torch.device:
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % max(torch.cuda.device_count(), 1))


def device(name="auto") -> torch.device:
    """This process's device for ``name``: its GPU (LOCAL_RANK mod the GPUs) on CUDA under torchrun."""
    dev = resolve_device(name)
    if dev.type == "cuda" and world_size() > 1:
        return _local_gpu()
    return dev
