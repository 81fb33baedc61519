"""The shared argument checks (signals/checks.py) and the device resolver (kernels/devices.py)."""
import doctest

import numpy as np
import pytest
import torch

import signals.checks
from kernels import recover_time
from kernels.devices import free_memory, resolve_device
from signals.checks import check_choice, check_float, check_int


def test_doctests():
    assert doctest.testmod(signals.checks).failed == 0


@pytest.mark.parametrize("value,low,high,ok", [
    (3, 1, None, True), (np.int64(3), 1, None, True), (0, 1, None, False), (5, 1, 4, False), (4, 1, 4, True),
    (True, 0, None, False), (2.0, 1, None, False), ("2", 1, None, False)])
def test_check_int(value, low, high, ok):
    if ok:
        assert check_int("n", value, low, high) == int(value)
        assert type(check_int("n", value, low, high)) is int
    else:
        with pytest.raises(ValueError, match=r"^n must be an integer"):
            check_int("n", value, low, high)


@pytest.mark.parametrize("value,kw,ok", [
    (0.5, dict(low=0, high=1), True), (0.0, dict(low=0, low_open=True), False), (1.0, dict(high=1, high_open=True), False),
    (float("nan"), {}, False), (float("inf"), {}, False), (True, {}, False), (2, dict(low=0), True)])
def test_check_float(value, kw, ok):
    if ok:
        assert check_float("p", value, **kw) == float(value)
    else:
        with pytest.raises(ValueError, match=r"^p must be"):
            check_float("p", value, **kw)


def test_check_choice_lists_the_choices():
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="mode must be one of a, b, got 'c'"):
        check_choice("mode", "c", ("a", "b"))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, got 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_free_memory_is_a_positive_byte_count():
    assert free_memory("cpu") > 1 << 20


@pytest.mark.parametrize("normalize", [False, True])
def test_recover_time_counts_steps(normalize):
    """Prop. 1: the scan with A = 0, B = 1 on ones gives t (or t / L, a sum of 1/L) for every row."""
    t = recover_time(3, 7, normalize=normalize, dtype=torch.float64)
    want = torch.arange(1, 8, dtype=torch.float64) / (7 if normalize else 1)
    assert t.shape == (3, 7)
    assert torch.allclose(t, want.expand(3, 7), rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="length must be a positive integer"):
        recover_time(1, 0)
