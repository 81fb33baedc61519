"""approx.bases against closed forms: the scan-realised values and projections (eq. 8), the Heaviside
construction (eqs. 20-22), time recovery (Prop. 1), S4D (eq. 9), and the ideal Haar / Fourier dictionaries."""
import math

import pytest
import torch

from approx import bases
from approx.lstsq import errors, least_squares
from signals.grid import midpoints, time_channel

f64 = torch.float64



def heaviside_delta(tau, t_hat, L):
    """Δ_n(τ_r) = softplus(−|w| (τ_r − c_n)) at the default sharpness, written out from eqs. (20)-(22)."""
    c = bases.heaviside_switch(t_hat, L)
    return torch.nn.functional.softplus(-bases.default_sharpness(L) * (tau - c[..., None]))


def closed_form_values(delta, lam):
    """exp(−(λ/L) Σ_{r>i} Δ_r) by an explicit suffix sum. delta (…, K, L), lam (K,). Returns (…, L, K)."""
    L = delta.shape[-1]
    suffix = delta.flip(-1).cumsum(-1).flip(-1) - delta          # Σ_{r > i}
    return torch.exp(-(lam[..., None] / L) * suffix).transpose(-1, -2)


@pytest.mark.parametrize("shape, L", [((3,), 1), ((4,), 17), ((2, 3, 5), 33)])
def test_scan_basis_values_match_the_suffix_sum(shape, L):
    gen = torch.Generator().manual_seed(0)
    delta = 3 * torch.rand(*shape, L, generator=gen, dtype=f64)
    lam = torch.rand(shape[-1], generator=gen, dtype=f64) + 0.1
    g = bases.scan_basis_values(delta, lam)
    assert g.shape == (*shape[:-1], L, shape[-1])
    torch.testing.assert_close(g, closed_form_values(delta, lam), rtol=1e-12, atol=1e-14)


def test_scan_basis_values_complex_lambda():
    gen = torch.Generator().manual_seed(1)
    delta = torch.rand(3, 40, generator=gen, dtype=f64)
    lam = torch.complex(torch.rand(3, generator=gen, dtype=f64), 20 * torch.randn(3, generator=gen, dtype=f64))
    g = bases.scan_basis_values(delta, lam)
    assert g.is_complex()
    torch.testing.assert_close(g, closed_form_values(delta.to(lam.dtype), lam), rtol=1e-12, atol=1e-13)


def test_negative_decay_rate_is_refused():
    with pytest.raises(ValueError, match="non-negative real part"):
        bases.scan_basis_values(torch.ones(2, 5, dtype=f64), torch.tensor([1.0, -1.0], dtype=f64))


@pytest.mark.parametrize("L", [4096, 1000])
def test_projection_identity_forward_scan_equals_inner_product_of_values(L):
    """h_n(L) of the forward basis-form scan on x equals (1/L) Σ_i g_n(s_i) x_i (eq. 8), batched over signals."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, L, generator=gen, dtype=f64)
    t_hat = torch.tensor([0.0, 0.25, 1 / 3, 0.71, 0.5 + 3 / L], dtype=f64)
    tau = time_channel(L)
    delta = heaviside_delta(tau, t_hat, L)
    g = bases.scan_basis_values(delta, 1.0)                       # (L, K)
    h = bases.scan_inner_products(x, delta, 1.0)                  # (2, K)
    torch.testing.assert_close(h, (g.unsqueeze(0) * x.unsqueeze(-1)).mean(-2), rtol=0, atol=1e-12)
    # with a smooth random Δ, several λ and B (not only Heavisides)
    delta = torch.rand(4, L, generator=gen, dtype=f64)
    lam = torch.tensor([0.0, 0.5, 2.0, 7.0], dtype=f64)
    B = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=f64)
    h = bases.scan_inner_products(x, delta, lam, B)
    g = closed_form_values(delta, lam) * B
    torch.testing.assert_close(h, (g.unsqueeze(0) * x.unsqueeze(-1)).mean(-2), rtol=0, atol=1e-12)


def test_time_recovery_is_i_over_L_and_pe_equals_recover():
    for L in (4096, 1000):
        torch.testing.assert_close(bases.time_signal(L, "recover"), time_channel(L), rtol=0, atol=1e-13)
        t_hat = torch.tensor([0.0, 0.125, 0.3, 0.77, 0.999], dtype=f64)
        pe = bases.mamba_basis(t_hat, L, time="pe")
        rec = bases.mamba_basis(t_hat, L, time="recover")
        assert (pe - rec).abs().max().item() < 1e-10
    with pytest.raises(ValueError, match="time must be one of"):
        bases.mamba_basis([0.5], 8, time="clock")


@pytest.mark.parametrize("L", [4096, 1000, 7])
def test_mamba_basis_is_the_discrete_heaviside_at_default_sharpness(L):
    s = midpoints(L)
    # cell edges, dyadic points, points inside a cell, and a point exactly on a midpoint
    t_hat = torch.tensor([0.0, 0.5, 0.25, 1 / 3, 0.7 + 0.2 / L, float(s[L // 2])], dtype=f64)
    g = bases.mamba_basis(t_hat, L)
    ideal = bases.heaviside_grid(t_hat, L)
    assert (g - ideal).abs().max().item() < 1e-12
    assert torch.equal(ideal[:, 0], torch.ones(L, dtype=f64))   # H(s − 0) is the constant


def test_mamba_basis_batched_over_leading_axes():
    t_hat = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype=f64)
    g = bases.mamba_basis(t_hat, 64)
    assert g.shape == (2, 64, 3)
    torch.testing.assert_close(g[1], bases.mamba_basis(t_hat[1], 64), rtol=0, atol=0)


def test_heaviside_switch_sits_between_the_last_off_and_first_on_steps():
    L = 16
    for i_star in range(0, L - 1):
        c = bases.heaviside_switch(torch.tensor(i_star / L, dtype=f64), L).item()
        assert (i_star + 1) / L < c < (i_star + 2) / L


def test_finite_sharpness_error_grows_as_w_shrinks():
    L = 1024
    t_hat = torch.tensor([0.0, 0.3, 0.5, 0.8], dtype=f64)
    ideal = bases.heaviside_grid(t_hat, L)
    devs = [(bases.mamba_basis(t_hat, L, sharpness=w) - ideal).abs().max().item()
            for w in (64.0 * L * L, 8.0 * L * L, 1.0 * L * L, 0.1 * L * L, 10.0 * L)]
    assert devs[0] < 1e-12
    assert all(a < b for a, b in zip(devs, devs[1:])), devs
    assert devs[-1] > 0.5
    for bad in (0, -1.0, float("nan"), float("inf"), "sharp"):
        with pytest.raises(ValueError, match="sharpness"):
            bases.mamba_basis(t_hat, L, sharpness=bad)


def test_mamba_cannot_realise_a_heaviside_at_the_last_midpoint():
    """g(s_L) = B for every Mamba basis: a Heaviside beyond s_L becomes the indicator of the last cell."""
    L = 32
    g = bases.mamba_basis(torch.tensor([1.0], dtype=f64), L)[:, 0]
    assert g[-1].item() == 1.0 and g[:-1].abs().max().item() < 1e-12


def test_s4d_basis_is_exp_minus_lambda_one_minus_s_at_midpoints():
    L = 4096
    s = midpoints(L)
    lam = torch.tensor([0.5 + 0j, 0.5 + 3j, 2.0 - 40j, 0.0 - 2 * math.pi * 5j], dtype=torch.complex128)
    g = bases.s4d_basis_complex(lam, L)
    exact = torch.exp(-lam[None, :] * (1 - s[:, None]))
    torch.testing.assert_close(g, exact, rtol=0, atol=1e-12)
    G = bases.s4d_basis(lam, L)
    assert G.shape == (L, 7)                                     # the real λ gives one function
    torch.testing.assert_close(G[:, 0], exact[:, 0].real)
    torch.testing.assert_close(G[:, 1:3], torch.stack([exact[:, 1].real, exact[:, 1].imag], -1))


def test_fourier_lambdas_give_the_fourier_functions():
    L, n = 512, 9
    G = bases.s4d_basis(bases.fourier_lambdas(n), L)[:, :n]
    k, kind = bases.fourier_index(n)
    F = bases.fourier_functions(k, kind, L)
    sign = torch.where(kind == 1, -1.0, 1.0).to(f64)            # Im exp(i2πk(1 − s)) = −sin 2πks
    torch.testing.assert_close(G, F * sign, rtol=0, atol=1e-12)
    lin = bases.s4d_lin_lambdas(6)
    assert lin.shape == (4,) and lin[0] == 0.5 and lin[2] == complex(0.5, 2 * math.pi)


def test_haar_coefficients_are_grid_inner_products_with_orthonormal_atoms():
    L = 64
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, L, generator=gen, dtype=f64)
    j, k = bases.haar_index(L)
    A = bases.haar_atoms(j, k, L)
    torch.testing.assert_close(A.T @ A / L, torch.eye(L, dtype=f64), rtol=0, atol=1e-13)
    torch.testing.assert_close(bases.haar_coefficients(x), x @ A / L, rtol=0, atol=1e-13)
    assert j[0] == -1 and j[1] == 0 and (j[2], k[3]) == (1, 1)
    for bad in (48, 1):
        with pytest.raises(ValueError, match="power-of-two"):
            bases.haar_coefficients(torch.zeros(bad, dtype=f64))


def test_haar_atoms_match_the_signals_library():
    import signals

    for j, k in ((0, 0), (2, 3), (4, 7)):
        torch.testing.assert_close(bases.haar_atoms([j], [k], 64)[:, 0], signals.haar(j, k, 64))


def test_eq18_heavisides_rebuild_every_atom():
    """Eq. (18), batched: three Heaviside slots per wavelet (two at the right edge, one for φ) rebuild every atom."""
    L = 32
    j_all, k_all = bases.haar_index(L)
    atoms = bases.haar_atoms(j_all, k_all, L)
    t_hat, w = bases.haar_heavisides(j_all, k_all)
    assert t_hat.shape == w.shape == (L, 3)
    for a, (j, k) in enumerate(zip(j_all.tolist(), k_all.tolist())):
        assert int((w[a] != 0).sum()) == (1 if j < 0 else 2 if k == 2 ** j - 1 else 3)
    H = bases.heaviside_grid(t_hat.reshape(-1), L).reshape(L, L, 3)
    torch.testing.assert_close((H * w[None]).sum(-1), atoms, rtol=0, atol=1e-14)


def test_best_haar_errors_match_least_squares_on_the_chosen_atoms():
    L = 256
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, L, generator=gen, dtype=f64).cumsum(-1)
    e = bases.haar_best_l2_sq(x)
    assert e.shape == (2, L + 1) and torch.all(e[:, 1:] <= e[:, :-1] + 1e-15)
    assert e[:, -1].abs().max() < 1e-10
    j, k = bases.haar_index(L)
    for K in (1, 7, 40):
        idx = bases.haar_best_atoms(x[1], K)
        _, fit = least_squares(bases.haar_atoms(j[idx], k[idx], L), x[1])
        assert errors(x[1], fit)["l2_sq"].item() == pytest.approx(e[1, K].item(), rel=1e-10, abs=1e-14)


def test_fourier_energies_and_partial_and_best_errors():
    for L in (64, 63):
        gen = torch.Generator().manual_seed(L)
        x = torch.randn(L, generator=gen, dtype=f64)
        M = bases.max_fourier_terms(L)
        k, kind = bases.fourier_index(M)
        F = bases.fourier_functions(k, kind, L)
        norms = (F ** 2).mean(0)
        expected = ((x[:, None] * F).mean(0)) ** 2 / norms
        torch.testing.assert_close(bases.fourier_energies(x), expected, rtol=1e-10, atol=1e-14)
        partial = bases.fourier_partial_l2_sq(x)
        for n in (1, 2, 9, M):
            _, fit = least_squares(F[:, :n], x)
            assert partial[n].item() == pytest.approx(errors(x, fit)["l2_sq"].item(), rel=1e-9, abs=1e-13)
        best = bases.fourier_best_l2_sq(x)
        idx = bases.fourier_best_terms(x, 5)
        _, fit = least_squares(F[:, idx], x)
        assert best[5].item() == pytest.approx(errors(x, fit)["l2_sq"].item(), rel=1e-9)
        assert best[5] <= partial[5]
    assert bases.max_fourier_terms(64) == 63 and bases.max_fourier_terms(63) == 63
    with pytest.raises(ValueError, match="real Fourier functions"):
        bases.check_fourier_terms(64, 64)


def test_fourier_coefficients_of_a_pure_cosine():
    L = 128
    s = midpoints(L)
    x = 3 * torch.cos(2 * math.pi * 5 * s) - torch.sin(2 * math.pi * 2 * s)
    e = bases.fourier_energies(x)
    k, kind = bases.fourier_index(bases.max_fourier_terms(L))
    big = torch.nonzero(e > 1e-20).flatten().tolist()
    assert [(int(k[i]), int(kind[i])) for i in big] == [(2, 1), (5, 0)]
    assert e[big].tolist() == pytest.approx([0.5, 4.5])


def _triton_runs_here():
    import os

    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@pytest.mark.skipif(not _triton_runs_here(), reason="needs triton with CUDA or TRITON_INTERPRET=1")
def test_bases_through_the_triton_backend_match_the_reference():
    # CUDA tensors where a GPU is present (the compiled kernels), CPU tensors under TRITON_INTERPRET=1 otherwise.
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    L = 64
    t_hat = torch.tensor([0.0, 0.25, 0.3, 0.7], dtype=f64)
    ref = bases.mamba_basis(t_hat, L, backend="reference")
    got = bases.mamba_basis(t_hat.to(dev), L, backend="triton", time="recover", device=dev)
    torch.testing.assert_close(got.cpu(), ref, rtol=0, atol=1e-13)
    lam = bases.fourier_lambdas(7)
    got = bases.s4d_basis(lam.to(dev), L, backend="triton", device=dev)
    torch.testing.assert_close(got.cpu(), bases.s4d_basis(lam, L, backend="reference"), rtol=0, atol=1e-13)
    x = torch.randn(2, L, dtype=f64, generator=torch.Generator().manual_seed(5))
    delta = heaviside_delta(time_channel(L), t_hat, L)
    got = bases.scan_inner_products(x.to(dev), delta.to(dev), 1.0, backend="triton")
    torch.testing.assert_close(got.cpu(), bases.scan_inner_products(x, delta, 1.0, backend="reference"),
                               rtol=0, atol=1e-13)
