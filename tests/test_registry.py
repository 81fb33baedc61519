"""The one table of (basis, strategy): every entry is well formed, and a new basis family is one registration.

A toy family — box functions 1[s in a cell], the N cells of a uniform partition — is registered here, in this
test module only, and runs through ``fit``, ``rates`` and the CLI's help without any other file knowing of it.
Its errors are checked against a closed form: the fit on N equal cells leaves the within-cell variance.
"""
import numpy as np
import pytest
import torch

import signals
from approx import fit, rate_sweep, registry
from approx.lstsq import nested_l2_sq
from approx.registry import FitParts, Strategy


def test_every_entry_is_complete_and_keys_are_unique():
    keys = [e.key for e in registry.entries()]
    assert len(keys) == len(set(keys))
    assert registry.bases()[:4] == ("s4d", "mamba", "haar", "fourier")
    for e in registry.entries():
        assert e.help and e.label and (e.fit or e.sweep or e.train)
        if e.theory is not None:
            th = e.theory(3)
            assert th["law"] in ("power", "exp", "floor") and th["statement"]
    for b in registry.bases():
        assert registry.get(b).default_fit and registry.get(b).fit is not None


def test_rate_and_fit_tables_agree_with_each_other():
    """A strategy that fits and sweeps gives the same error for one signal at one N either way."""
    x = signals.piecewise(3, 256, 5)
    for e in registry.entries():
        if e.fit is None or e.sweep is None:
            continue
        n = 9
        one = fit(x, basis=e.basis, strategy=e.name, n=n).metrics["l2_sq"]
        params = tuple(a[None] for a in signals.piecewise_params(3, 5))
        settings = registry.Settings(sharpness=64.0 * 256 ** 2)
        batched = float(e.sweep(x[None], n, settings, params)[0, n - 1])
        if (e.basis, e.name) == ("mamba", "heaviside"):
            continue                                    # the sweep uses the true jumps, the fit the largest ones
        assert batched == pytest.approx(one, rel=1e-7, abs=1e-12), e.key


def _boxes(L, n, device, dtype):
    s = signals.midpoints(L, dtype=dtype, device=device)
    cell = torch.clamp((s * n).long(), max=n - 1)
    return (cell[:, None] == torch.arange(n, device=device)).to(dtype)          # (L, n)


def _box_fit(x, n, settings):
    G = _boxes(x.shape[-1], n, x.device, x.dtype)
    return FitParts(G, G, [f"box {i}" for i in range(n)], {"cells": n})


def _box_sweep(x, n_max, settings, params):
    return torch.stack([nested_l2_sq(_boxes(x.shape[-1], n, x.device, x.dtype), x)[:, -1]
                        for n in range(1, n_max + 1)], -1)


@pytest.fixture
def toy_family():
    entry = registry.register(Strategy("box", "uniform", "indicator functions of N equal cells", "boxes",
                                       fit=_box_fit, sweep=_box_sweep, default_fit=True, max_n=lambda L: L))
    yield entry
    registry.unregister("box", "uniform")


def test_a_toy_family_runs_through_fit_rates_and_help(toy_family, capsys):
    from cli.main import main

    x = signals.piecewise(2, 64, 1)
    r = fit(x, basis="box", n=8)
    within = torch.stack([c - c.mean() for c in x.reshape(8, 8)]).pow(2).mean()        # closed form
    assert r.metrics["l2_sq"] == pytest.approx(float(within), rel=1e-12)
    assert r.config["strategy"] == "uniform"
    sweep = rate_sweep(m=[2], basis=["box"], n_max=4, trials=2, samples=64, reference=False, progress=False,
                       device="cpu")
    u = sweep.unit(2, "box", "uniform")
    assert u["verdict"] == "no rate is stated for this strategy" and len(u["summary"]["mean"]) == 4
    np.testing.assert_allclose(sweep.arrays[(2, "box", "uniform")][0][0, 3],
                               fit(signals.piecewise(2, 64, 0), basis="box", n=4).metrics["l2_sq"], rtol=1e-12)
    with pytest.raises(ValueError, match="n = 65 exceeds the 64 box/uniform"):
        fit(x, basis="box", n=65)
    assert "box: uniform" in registry.help_text(fit=True)
