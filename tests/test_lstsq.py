"""approx.lstsq against closed forms and an independent solver (numpy's lstsq)."""
import numpy as np
import pytest
import torch

from approx.lstsq import errors, least_squares, nested_l2_sq
from signals.grid import inner, midpoints, norm_sq, time_channel


def test_grid_midpoints_and_time_channel():
    s = midpoints(4)
    assert torch.allclose(s, torch.tensor([0.125, 0.375, 0.625, 0.875], dtype=torch.float64))
    assert torch.allclose(time_channel(4), torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    # ‖1‖² = 1 and ⟨s, 1⟩ = ½ exactly on the midpoint grid
    one = torch.ones(7, dtype=torch.float64)
    assert norm_sq(one).item() == pytest.approx(1.0, abs=1e-15)
    assert inner(midpoints(7), one).item() == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize("L", [0, -3, 2.5, True])
def test_grid_rejects_bad_length(L):
    with pytest.raises(ValueError, match=r"samples \(the number of grid points\) must be a positive integer"):
        midpoints(L)


def test_least_squares_matches_numpy_on_random_batches():
    gen = torch.Generator().manual_seed(1)
    G = torch.randn(4, 33, 5, generator=gen, dtype=torch.float64)
    x = torch.randn(4, 33, generator=gen, dtype=torch.float64)
    coef, fit = least_squares(G, x)
    for b in range(4):
        ref = np.linalg.lstsq(G[b].numpy(), x[b].numpy(), rcond=None)[0]
        np.testing.assert_allclose(coef[b].numpy(), ref, rtol=1e-10, atol=1e-12)
    err = errors(x, fit)
    assert torch.allclose(err["l2"] ** 2, err["l2_sq"])
    assert torch.allclose(err["l2_sq"], ((x - fit) ** 2).sum(-1) / 33)


def test_exact_representation_has_zero_error():
    s = midpoints(64)
    G = torch.stack([torch.ones_like(s), s, s ** 2], -1)
    x = 3 - 2 * s + 0.5 * s ** 2
    _, fit = least_squares(G, x)
    assert errors(x, fit)["l2_sq"].item() < 1e-26


def test_nested_errors_equal_separate_fits_with_dependent_columns():
    gen = torch.Generator().manual_seed(2)
    G = torch.randn(3, 40, 7, generator=gen, dtype=torch.float64)
    G[..., 3] = 2 * G[..., 0] - G[..., 2]      # dependent: adds nothing
    G[..., 5] = 0                              # zero column: adds nothing
    x = torch.randn(3, 40, generator=gen, dtype=torch.float64)
    nested = nested_l2_sq(G, x)
    for k in range(1, 8):
        _, fit = least_squares(G[..., :k], x)
        torch.testing.assert_close(nested[..., k - 1], errors(x, fit)["l2_sq"], rtol=1e-9, atol=1e-12)
    assert torch.equal(nested[..., 3], nested[..., 2])
    assert torch.all(nested[..., 1:] <= nested[..., :-1] + 1e-15)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="grid points"):
        least_squares(torch.zeros(5, 2), torch.zeros(6))
    with pytest.raises(ValueError, match="grid points"):
        nested_l2_sq(torch.zeros(5, 2), torch.zeros(6))
