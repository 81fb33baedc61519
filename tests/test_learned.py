"""approx.learned: scan-built bases against closed forms, gradients against finite differences, the variable
projection loss against least squares, and training that finds the Heaviside construction on simple signals."""

import pytest
import torch
import torch.nn.functional as F

import signals
from approx.learned import (_best_of, breakpoint_report, mamba_columns, projection_l2_sq, s4d_columns,
                            train_mamba_bases, train_s4d_bases)
from approx.lstsq import errors, least_squares
from signals.grid import midpoints, time_channel


def _mamba_closed_form(t_hat, log_w, log_lam, L):
    tau = time_channel(L)
    delta = F.softplus(-log_w.exp()[..., None] * (tau - t_hat[..., None])) * log_lam.exp()[..., None] / L
    suffix = delta.flip(-1).cumsum(-1).flip(-1) - delta                     # Σ_{r > i}
    return torch.exp(-suffix).transpose(-1, -2)


@pytest.mark.parametrize("L, K", [(1, 1), (7, 3), (64, 5)])
def test_mamba_columns_equal_the_closed_form(L, K):
    gen = torch.Generator().manual_seed(L)
    t_hat = torch.rand(2, K, generator=gen, dtype=torch.float64) * 1.2 - 0.1
    log_w = torch.rand(2, K, generator=gen, dtype=torch.float64) * 6
    log_lam = torch.randn(2, K, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(mamba_columns(t_hat, log_w, log_lam, L),
                               _mamba_closed_form(t_hat, log_w, log_lam, L), rtol=1e-12, atol=1e-14)


def test_s4d_columns_equal_the_closed_form():
    L, K = 50, 3
    gen = torch.Generator().manual_seed(0)
    log_re = torch.randn(2, K, generator=gen, dtype=torch.float64)
    im = torch.randn(2, K, generator=gen, dtype=torch.float64) * 20
    G = s4d_columns(log_re, im, L, 5)
    lam = torch.complex(log_re.exp(), im)
    ref = torch.exp(-lam[..., None] * (1 - midpoints(L))).transpose(-1, -2)      # (2, L, K), eq. (9) at s_i
    assert G.shape == (2, L, 5)
    torch.testing.assert_close(G[..., 0::2], ref.real, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(G[..., 1::2], ref.imag[..., :2], rtol=1e-10, atol=1e-12)


def test_gradients_through_the_scan_match_finite_differences():
    L = 12
    t_hat = torch.tensor([[0.3, 0.7]], dtype=torch.float64, requires_grad=True)
    log_w = torch.tensor([[2.5, 3.0]], dtype=torch.float64, requires_grad=True)
    log_lam = torch.tensor([[0.5, 1.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: mamba_columns(a, b, c, L), (t_hat, log_w, log_lam))
    log_re = torch.tensor([[-0.5]], dtype=torch.float64, requires_grad=True)
    im = torch.tensor([[6.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: s4d_columns(a, b, L, 2), (log_re, im))


def test_projection_loss_equals_least_squares_error():
    gen = torch.Generator().manual_seed(3)
    G = torch.randn(4, 40, 5, generator=gen, dtype=torch.float64)
    x = torch.randn(4, 40, generator=gen, dtype=torch.float64)
    ref = errors(x, least_squares(G, x)[1])["l2_sq"]
    torch.testing.assert_close(projection_l2_sq(G, x, ridge=0.0), ref, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(projection_l2_sq(G, x), ref, rtol=1e-6, atol=1e-12)


def test_best_of_restarts_picks_the_smallest_error_per_trial():
    l2 = torch.tensor([3.0, 1.0, 2.0, 5.0, 0.5, 4.0])           # 2 restarts × 3 trials, restart-major
    p = torch.arange(6.0)[:, None]
    best, bp = _best_of(2, 3, l2, p)
    assert best.tolist() == [3.0, 0.5, 2.0] and bp[:, 0].tolist() == [0.0, 4.0, 2.0]


def test_training_finds_the_heaviside_construction_for_one_jump():
    L, T = 64, 6
    x = signals.piecewise(1, L, seed=4, batch=T)
    breaks = torch.as_tensor(signals.piecewise_params(1, 4, T)[0])
    untrained = train_mamba_bases(x, 2, steps=0, seed=0)
    r = train_mamba_bases(x, 2, steps=200, seed=0, restarts=2)
    assert r["t_hat"].shape == (T, 2) and bool((r["w"] < 0).all()) and len(r["loss"]) == 200
    assert r["loss"][-1] < r["loss"][0]
    assert float(r["l2_sq"].mean()) < 0.1 * float(untrained["l2_sq"].mean())
    assert int((r["l2_sq"] < 1e-3).sum()) >= T - 1
    rep = breakpoint_report(r["t_hat"], r["w"], r["lam"], breaks, L)
    good = r["l2_sq"] < 1e-3
    # one sharp learned edge sits at the jump (within 2 cells); the other basis is blunt and plays the constant
    assert bool((rep["jump_dist"][good] <= 2.0 / L).all())
    assert bool((rep["n_sharp"][good] >= 1).all())
    assert float(rep["edge_width"][rep["sharp"]].median()) < 4.0 / L


def test_breakpoint_report_on_known_parameters():
    L = 100
    t_hat = torch.tensor([[0.5 + 1.5 / L, 0.3], [0.2, 0.9]], dtype=torch.float64)
    w = torch.tensor([[-1e5, -1.0], [-1e5, -1e5]], dtype=torch.float64)
    lam = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    rep = breakpoint_report(t_hat, w, lam, torch.tensor([[0.5], [0.6]], dtype=torch.float64), L)
    assert rep["sharp"].tolist() == [[True, False], [True, True]] and rep["n_sharp"].tolist() == [1, 2]
    assert rep["jump_dist"][0].item() == pytest.approx(0.0, abs=1e-12)
    assert rep["jump_dist"][1].item() == pytest.approx((0.9 - 1.5 / L) - 0.6)


def test_s4d_training_lowers_the_error():
    x = signals.piecewise(1, 32, seed=0, batch=3)
    before = train_s4d_bases(x, 4, steps=0, seed=1)["l2_sq"]
    after = train_s4d_bases(x, 4, steps=20, seed=1)
    assert after["lam"].shape == (3, 2) and bool((after["lam"].real > 0).all())
    assert float(after["l2_sq"].mean()) < float(before.mean())


@pytest.mark.parametrize("kw, match", [(dict(n=0), "number of bases"), (dict(steps=-1), "steps"),
                                       (dict(restarts=0), "restarts"), (dict(lr=0.0), "lr")])
def test_bad_training_arguments_are_rejected(kw, match):
    args = dict(n=2, steps=1)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        train_mamba_bases(torch.zeros(2, 8, dtype=torch.float64), **args)
    with pytest.raises(ValueError, match="trials, L"):
        train_mamba_bases(torch.zeros(8), 2)
