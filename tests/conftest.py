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


def run_cli(argv, capsys):
    """Run ``approx argv`` in-process; return (exit code, stdout, stderr). Test modules import it as ``run``."""
    from cli.main import main

    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err
