"""CUDA-graph capture of a training step (``torch.cuda.CUDAGraph``).

The step function must keep every tensor it reads and writes at a fixed address (in-place updates only) and must
not synchronise with the host. Capture needs a few warm-up runs on a side stream first (they allocate the
autograd and library workspaces); they change the training state, so the state is copied before and restored
after them, and the captured graph then replays exactly the step the eager path would run.
"""
from __future__ import annotations

import torch

WARMUP_STEPS = 3


class GraphedStep:
    """``step_fn`` captured once; calling the object replays it.

    Parameters
    ----------
    step_fn : the step, a function of no arguments that updates its tensors in place.
    state : every tensor ``step_fn`` changes, restored after the warm-up runs.
    """

    def __init__(self, step_fn, state: list):
        saved = [t.detach().clone() for t in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step_fn()
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            for t, v in zip(state, saved):
                t.copy_(v)
        # captured on the caller's stream when it has its own (groups trained side by side, each on a stream):
        # library workspaces (cuBLAS) belong to the capture stream, and graphs captured on one shared stream would
        # write the same workspace when they replay concurrently; on the default stream, which cannot capture,
        # torch's own capture stream serves
        current = torch.cuda.current_stream()
        own = None if current == torch.cuda.default_stream() else current
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=own):
            step_fn()

    def __call__(self) -> None:
        self.graph.replay()
