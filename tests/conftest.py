"""Shared fixtures."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """The scan's CPU reference is a loop of small tensor ops: one intra-op thread is fastest for them (and on a
    busy machine several threads spin against each other). Restored after the module that asks for it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
