"""Triton kernels of the scan engine (docs/design.md §2): the GPU path of :func:`kernels.selective_scan` for complex
and float64 scans, for grouped shapes the Gluon kernels (:mod:`kernels.gluon_scan`) do not take, and, under
``TRITON_INTERPRET=1``, on the CPU.

Forward, for batch b, channel d, state n, step t (h_0 = 0; the paper's eqs. (2)-(5), Δ per channel as Mamba/S6
eq. (14f), per state as Mamba-Δ⊤ eq. (15), or one scalar as Mamba-2 eq. (14f right)):

    a_t = exp(Δ_t·A[d, n]),  b_t = (Δ_t | 1)·u_t[d]·B_t[n]
    h_t = a_t·h_{t−1} + b_t,  y_t[d] = Re Σ_n C_t[n]·h_t + D[d]·u_t[d]

Backward (g_t = ∂loss/∂y_t; gradients of complex tensors as ∂/∂Re + i ∂/∂Im, PyTorch's convention):

    λ_t = g_t·conj(C_t) + conj(a_{t+1})·λ_{t+1}   (λ_L also gets ∂loss/∂h_L)     ∂/∂b_t = λ_t
    ∂/∂a_t = conj(h_{t−1})·λ_t,  ∂/∂C_t[n] = Σ_d g_t·conj(h_t)

Layout. One program owns (batch b, a block of BD channels) and walks the sequence in chunks of T steps; a chunk is
a (BD, BN, T) register tile (BN = N rounded up to a power of two) scanned along T with ``tl.associative_scan`` on
the affine maps x ↦ a·x + b. No (batch, L, D, N) tensor is written. With grouped B, C (batch, G, N, L) every
channel block lies inside one group (BD divides the D/G channels of a group), so a program reads one group's B, C
(and grouped Δ).

Carries (forward). The state entering a chunk is not folded into the scan: the chunk is scanned from zero and the
carry added with the decay accumulated since the chunk's start, h_t = h_t^{(0)} + exp(A·S_t + ℓ)·s, with
S_t = Σ_{s ≤ t in the chunk} Δ_s a running sum (``tl.cumsum``). The carry itself is kept as h = exp(ℓ)·s: while
its decay stays within a factor e^{±1/2}, ℓ accumulates the exponent and s only the new input; beyond, it is
materialised (s = h, ℓ = 0). A product of per-step factors exp(Δ·A), or even one factor per chunk, rounds to 1 (or
to its nearest float32) when Δ·|A| is below float32's resolution (Δ = 1e-8) and loses the decay over a long
sequence; the exponent keeps it. The backward recomputes each chunk from the forward's checkpoint with the carries
folded into its scans (within one chunk a product of factors is exact enough).

The forward stores the state at every chunk start when a backward will follow (``ckpt``, N/T of the size of u);
the backward walks the chunks from the last, recomputes h_{t−1} and h_t from that checkpoint, and runs the adjoint
scan in reverse, loading chunk c − 1 while it computes chunk c (software prefetch). Both scans also carry the
"previous" prefix (the map of all but the last element), which yields h_{t−1} and κ_{t+1} = conj(a_{t+1})λ_{t+1}
without shifting registers and without dividing by a (a underflows to 0 when Δ·A ≪ 0). The sums over channels
(dB, dC, and dΔ in the "state" and "scalar" modes) are reduced inside a program over its BD channels and written as
one partial per channel block, which PyTorch sums per group (no atomics: deterministic, and the blocks of one batch
element would all hit the same addresses at the same time); dA and dD are written per (batch, channel) and summed
over the batch by PyTorch.

exp(Δ·A) is computed as exp2(Δ·A·log2 e) with A·log2 e formed once per program.

Complex A, B, C (S4D) are carried as real and imaginary parts (Triton has no complex dtype). Compute is in the
dtype of the inputs after promotion: float32, or float64 when any input is float64/complex128.
"""
from __future__ import annotations

import os

import triton
import triton.language as tl
import torch

DELTA_MODE_ID = {"channel": 0, "state": 1, "scalar": 2}
INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

# When True, outputs that the kernels must fully write are allocated filled with NaN (tests set it), so an
# element a kernel forgets to write fails the comparison instead of holding stale memory.
POISON = False


@triton.jit
def _softplus(x):
    """log(1 + e^x) without overflow: max(x, 0) + log1p(e^{−|x|}), log1p kept accurate for tiny arguments."""
    e = tl.exp(-tl.abs(x))
    w = 1.0 + e
    lp = tl.where(w == 1.0, e, tl.log(w) * e / tl.where(w == 1.0, 1.0, w - 1.0))
    return tl.maximum(x, 0.0) + lp


@triton.jit
def _sigmoid(x):
    """d softplus/dx = 1 / (1 + e^{−x}) without overflow."""
    e = tl.exp(-tl.abs(x))
    return tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _affine_real(a1, b1, a2, b2):
    """Compose x ↦ a1 x + b1, then x ↦ a2 x + b2."""
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _affine_cplx(ar1, ai1, br1, bi1, ar2, ai2, br2, bi2):
    """Complex :func:`_affine_real`."""
    return (ar1 * ar2 - ai1 * ai2, ar1 * ai2 + ai1 * ar2,
            ar2 * br1 - ai2 * bi1 + br2, ar2 * bi1 + ai2 * br1 + bi2)


@triton.jit
def _affine_prev_real(a1, b1, p1, q1, a2, b2, p2, q2):
    """Compose maps S1 then S2 and also their 'previous' map prev(S1∘S2) = S1 then prev(S2) (prev of a single
    element is the identity), so the scan yields for every position the map of all elements before it."""
    return a1 * a2, a2 * b1 + b2, p2 * a1, p2 * b1 + q2


@triton.jit
def _affine_prev_cplx(ar1, ai1, br1, bi1, pr1, pi1, qr1, qi1, ar2, ai2, br2, bi2, pr2, pi2, qr2, qi2):
    """Complex :func:`_affine_prev_real`."""
    return (ar1 * ar2 - ai1 * ai2, ar1 * ai2 + ai1 * ar2,
            ar2 * br1 - ai2 * bi1 + br2, ar2 * bi1 + ai2 * br1 + bi2,
            pr2 * ar1 - pi2 * ai1, pr2 * ai1 + pi2 * ar1,
            pr2 * br1 - pi2 * bi1 + qr2, pr2 * bi1 + pi2 * br1 + qi2)


@triton.jit
def _delta_ptrs(dlt, pid_b, grp, d, n, t, md, mn, mt, D, N, L, G, DELTA_MODE: tl.constexpr):
    """Pointers and mask of the chunk's Δ as a tile broadcastable to (BD, BN, T); ``grp`` is the program's group
    (grouped Δ of the state/scalar modes is (batch, G, N, L) / (batch, G, L); ungrouped is G = 1)."""
    if DELTA_MODE == 0:
        ptr = dlt + pid_b * D * L + d[:, None, None] * L + t[None, None, :]
        m = md[:, None, None] & mt[None, None, :]
    elif DELTA_MODE == 1:
        ptr = dlt + (pid_b * G + grp) * N * L + n[None, :, None] * L + t[None, None, :]
        m = mn[None, :, None] & mt[None, None, :]
    else:
        ptr = dlt + (pid_b * G + grp) * L + t[None, None, :]
        m = mt[None, None, :]
    return ptr, m


@triton.jit
def _delta_act(raw, m, SOFTPLUS: tl.constexpr):
    """Δ from the loaded pre-activation: softplus applied when asked, 0 on padded steps."""
    if SOFTPLUS:
        dl = tl.where(m, _softplus(raw), 0.0)
    else:
        dl = raw
    return dl


@triton.jit
def _decay(x, ar2, ai2, A_CPLX: tl.constexpr):
    """exp(x·A) as (re, im) for x broadcastable to (BD, BN, T), given A·log2 e as (ar2, ai2)."""
    if A_CPLX:
        mag = tl.exp2(x * ar2)
        ang = x * ai2 * 0.6931471805599453                      # undo the log2 e scaling of the phase
        return mag * tl.cos(ang), mag * tl.sin(ang)
    else:
        e = tl.exp2(x * ar2)
        return e, tl.zeros_like(e)


@triton.jit
def _kahan(total, comp, value):
    """Compensated addition: (total + value, its new compensation), the rounding of each addition carried on."""
    y = value - comp
    t = total + y
    return t, (t - total) - y


@triton.jit
def _shifted_decay(x, ar2, ai2, lr2, li2, A_CPLX: tl.constexpr):
    """exp(x·A + ℓ) as (re, im), exponents in log2 units: A·log2 e = (ar2, ai2), ℓ·log2 e = (lr2, li2)."""
    if A_CPLX:
        mag = tl.exp2(x * ar2 + lr2)
        ang = (x * ai2 + li2) * 0.6931471805599453
        return mag * tl.cos(ang), mag * tl.sin(ang)
    else:
        e = tl.exp2(x * ar2 + lr2)
        return e, tl.zeros_like(e)


@triton.jit
def _scan_fwd_kernel(u, dlt, Ar, Ai, Br, Bi, Cr, Ci, Dv, y, hr_out, hi_out, ckr, cki,
                     D, N, L, G, CPG, n_chunks,
                     DELTA_MODE: tl.constexpr, INPUT_DELTA: tl.constexpr, SOFTPLUS: tl.constexpr,
                     A_CPLX: tl.constexpr, B_CPLX: tl.constexpr, C_CPLX: tl.constexpr, HAS_D: tl.constexpr,
                     SAVE_CKPT: tl.constexpr, SAVE_LAST: tl.constexpr,
                     BD: tl.constexpr, BN: tl.constexpr, T: tl.constexpr):
    """y (batch, D, L) of the recurrence in the module docstring; grid (batch, cdiv(D, BD))."""
    CPLX: tl.constexpr = A_CPLX or B_CPLX or C_CPLX
    LOG2E: tl.constexpr = 1.4426950408889634
    pid_b = tl.program_id(0)
    pid_d = tl.program_id(1)
    grp = (pid_d * BD) // CPG
    d = pid_d * BD + tl.arange(0, BD)
    n = tl.arange(0, BN)
    j = tl.arange(0, T)
    md = d < D
    mn = n < N
    m_dn = md[:, None] & mn[None, :]
    a_off = d[:, None] * N + n[None, :]
    ar2d = tl.load(Ar + a_off, mask=m_dn, other=0.0) * LOG2E
    ai2d = ar2d
    if A_CPLX:
        ai2d = tl.load(Ai + a_off, mask=m_dn, other=0.0) * LOG2E
    ar2 = ar2d[:, :, None]
    ai2 = ai2d[:, :, None]
    last = (j == T - 1)[None, None, :]
    if HAS_D:
        dskip = tl.load(Dv + d, mask=md, other=0.0)[:, None]
    # the carry h = exp(ℓ)·s: a scaled state s and a log-decay ℓ (log2 units) not yet applied to it; s is a
    # compensated (Kahan) sum, cr_/ci_ its running compensations
    sr = tl.zeros((BD, BN), dtype=ar2.dtype)
    si = tl.zeros((BD, BN), dtype=ar2.dtype)
    cr_ = tl.zeros((BD, BN), dtype=ar2.dtype)
    ci_ = tl.zeros((BD, BN), dtype=ar2.dtype)
    lr2 = tl.zeros((BD, BN), dtype=ar2.dtype)
    li2 = tl.zeros((BD, BN), dtype=ar2.dtype)
    ck_off = d[:, None] * BN + n[None, :]
    bc_base = (pid_b * G + grp) * N * L
    for c in range(n_chunks):
        t = c * T + j
        mt = t < L
        if SAVE_CKPT:
            ck_base = (pid_b * n_chunks + c) * D * BN
            fr, fi = _shifted_decay(0.0, ar2d, ai2d, lr2, li2, A_CPLX)
            tl.store(ckr + ck_base + ck_off, fr * sr - fi * si, mask=md[:, None])
            if CPLX:
                tl.store(cki + ck_base + ck_off, fr * si + fi * sr, mask=md[:, None])
        m_dt = md[:, None] & mt[None, :]
        m_nt = mn[:, None] & mt[None, :]
        uu = tl.load(u + pid_b * D * L + d[:, None] * L + t[None, :], mask=m_dt, other=0.0)
        ptr, m = _delta_ptrs(dlt, pid_b, grp, d, n, t, md, mn, mt, D, N, L, G, DELTA_MODE)
        dl = _delta_act(tl.load(ptr, mask=m, other=0.0), m, SOFTPLUS)
        bc_off = bc_base + n[:, None] * L + t[None, :]
        coef = uu[:, None, :]
        if INPUT_DELTA:
            coef = coef * dl
        br_t = tl.load(Br + bc_off, mask=m_nt, other=0.0)[None, :, :]
        cr_t = tl.load(Cr + bc_off, mask=m_nt, other=0.0)[None, :, :]
        # the chunk scanned from zero, then the carry with its decay exp(A·S_t + ℓ), S_t the running sum of Δ
        s_run = tl.cumsum(dl, axis=2)
        e_r, e_i = _shifted_decay(s_run, ar2, ai2, lr2[:, :, None], li2[:, :, None], A_CPLX)
        a_r, a_i = _decay(dl, ar2, ai2, A_CPLX)
        b_r = coef * br_t + tl.zeros_like(a_r)
        s_end = tl.sum(tl.where(last, s_run + tl.zeros_like(a_r), 0.0), axis=2)
        xr2 = s_end * ar2d + lr2                     # the carry's log-decay at the chunk's end
        xi2 = s_end * ai2d + li2
        if A_CPLX:
            keep = (tl.abs(xr2) <= 0.72) & (tl.abs(xi2) <= 0.72)
        else:
            keep = tl.abs(xr2) <= 0.72
        # while the decay stays within a factor e^{±1/2} it is kept in ℓ and the chunk's new input is scaled by
        # exp(−ℓ) into s; beyond, the carry is materialised (s = h, ℓ = 0): a decay too small for float32 to
        # hold as a factor is never rounded away
        ir_, ii_ = _shifted_decay(0.0, ar2d, ai2d, -xr2, -xi2, A_CPLX)
        if CPLX:
            if B_CPLX:
                b_i = coef * tl.load(Bi + bc_off, mask=m_nt, other=0.0)[None, :, :] + tl.zeros_like(a_r)
            else:
                b_i = tl.zeros_like(a_r)
            _, _, g_r, g_i = tl.associative_scan((a_r, a_i, b_r, b_i), 2, _affine_cplx)
            h_r = g_r + e_r * sr[:, :, None] - e_i * si[:, :, None]
            h_i = g_i + e_r * si[:, :, None] + e_i * sr[:, :, None]
            prod = cr_t * h_r
            if C_CPLX:
                prod -= tl.load(Ci + bc_off, mask=m_nt, other=0.0)[None, :, :] * h_i
            ge_r = tl.sum(tl.where(last, g_r, 0.0), axis=2)
            ge_i = tl.sum(tl.where(last, g_i, 0.0), axis=2)
            he_r = tl.sum(tl.where(last, h_r, 0.0), axis=2)
            he_i = tl.sum(tl.where(last, h_i, 0.0), axis=2)
            sr_k, cr_k = _kahan(sr, cr_, ge_r * ir_ - ge_i * ii_)
            si_k, ci_k = _kahan(si, ci_, ge_r * ii_ + ge_i * ir_)
            sr, cr_ = tl.where(keep, sr_k, he_r), tl.where(keep, cr_k, 0.0)
            si, ci_ = tl.where(keep, si_k, he_i), tl.where(keep, ci_k, 0.0)
        else:
            _, g_r = tl.associative_scan((a_r, b_r), 2, _affine_real)
            h_r = g_r + e_r * sr[:, :, None]
            prod = cr_t * h_r
            ge_r = tl.sum(tl.where(last, g_r, 0.0), axis=2)
            he_r = tl.sum(tl.where(last, h_r, 0.0), axis=2)
            sr_k, cr_k = _kahan(sr, cr_, ge_r * ir_)
            sr, cr_ = tl.where(keep, sr_k, he_r), tl.where(keep, cr_k, 0.0)
        lr2 = tl.where(keep, xr2, 0.0)
        li2 = tl.where(keep, xi2, 0.0)
        yy = tl.sum(prod, axis=1)
        if HAS_D:
            yy += dskip * uu
        tl.store(y + pid_b * D * L + d[:, None] * L + t[None, :], yy, mask=m_dt)
    if SAVE_LAST:
        out_off = pid_b * D * N + a_off
        fr, fi = _shifted_decay(0.0, ar2d, ai2d, lr2, li2, A_CPLX)
        tl.store(hr_out + out_off, fr * sr - fi * si, mask=m_dn)
        if CPLX:
            tl.store(hi_out + out_off, fr * si + fi * sr, mask=m_dn)


@triton.jit
def _scan_bwd_kernel(u, dlt, Ar, Ai, Br, Bi, Cr, Ci, Dv, dy, dhr, dhi, ckr, cki,
                     du, ddlt, dAr, dAi, dBr, dBi, dCr, dCi, dD,
                     D, N, L, G, CPG, n_chunks,
                     DELTA_MODE: tl.constexpr, INPUT_DELTA: tl.constexpr, SOFTPLUS: tl.constexpr,
                     A_CPLX: tl.constexpr, B_CPLX: tl.constexpr, C_CPLX: tl.constexpr, HAS_D: tl.constexpr,
                     HAS_DH: tl.constexpr,
                     BD: tl.constexpr, BN: tl.constexpr, T: tl.constexpr):
    """Gradients of the forward kernel (module docstring); grid (batch, cdiv(D, BD)), chunks walked last first.

    du, dΔ (channel mode) are stored; dB, dC, dΔ (state/scalar modes) are stored as partial sums over this
    program's channels, (batch, channel block, ...), and dA (batch, D, N), dD (batch, D) as per-batch partial sums."""
    CPLX: tl.constexpr = A_CPLX or B_CPLX or C_CPLX
    LOG2E: tl.constexpr = 1.4426950408889634
    pid_b = tl.program_id(0)
    pid_d = tl.program_id(1)
    grp = (pid_d * BD) // CPG
    part = pid_b * tl.num_programs(1) + pid_d
    d = pid_d * BD + tl.arange(0, BD)
    n = tl.arange(0, BN)
    j = tl.arange(0, T)
    md = d < D
    mn = n < N
    m_dn = md[:, None] & mn[None, :]
    a_off = d[:, None] * N + n[None, :]
    ar_ = tl.load(Ar + a_off, mask=m_dn, other=0.0)[:, :, None]
    ar2 = ar_ * LOG2E
    ai_ = ar_
    ai2 = ar2
    if A_CPLX:
        ai_ = tl.load(Ai + a_off, mask=m_dn, other=0.0)[:, :, None]
        ai2 = ai_ * LOG2E
    first = (j == 0)[None, None, :]
    last = (j == T - 1)[None, None, :]
    if HAS_D:
        dskip = tl.load(Dv + d, mask=md, other=0.0)[:, None]
    # κ = conj(a_t) λ_t of the step after the current chunk; starts as ∂loss/∂h_L.
    if HAS_DH:
        kr = tl.load(dhr + pid_b * D * N + a_off, mask=m_dn, other=0.0)
        if CPLX:
            ki = tl.load(dhi + pid_b * D * N + a_off, mask=m_dn, other=0.0)
        else:
            ki = tl.zeros_like(kr)
    else:
        kr = tl.zeros((BD, BN), dtype=ar_.dtype)
        ki = tl.zeros((BD, BN), dtype=ar_.dtype)
    gAr = tl.zeros((BD, BN), dtype=ar_.dtype)
    gAi = tl.zeros((BD, BN), dtype=ar_.dtype)
    if HAS_D:
        gD = tl.zeros((BD,), dtype=ar_.dtype)
    ck_off = d[:, None] * BN + n[None, :]
    dl_rows = pid_b * D * L + d[:, None] * L
    bc_rows = (pid_b * G + grp) * N * L + n[:, None] * L
    # Software prefetch: the loads of chunk c − 1 are issued before chunk c is computed, so two chunks of loads
    # are in flight per thread (the backward is latency-bound).
    t = (n_chunks - 1) * T + j
    mt = t < L
    m_dt = md[:, None] & mt[None, :]
    m_nt = mn[:, None] & mt[None, :]
    ck_base = (pid_b * n_chunks + n_chunks - 1) * D * BN
    nx_u = tl.load(u + dl_rows + t[None, :], mask=m_dt, other=0.0)
    nx_g = tl.load(dy + dl_rows + t[None, :], mask=m_dt, other=0.0)
    ptr, m = _delta_ptrs(dlt, pid_b, grp, d, n, t, md, mn, mt, D, N, L, G, DELTA_MODE)
    nx_raw = tl.load(ptr, mask=m, other=0.0)
    nx_br = tl.load(Br + bc_rows + t[None, :], mask=m_nt, other=0.0)
    nx_cr = tl.load(Cr + bc_rows + t[None, :], mask=m_nt, other=0.0)
    nx_h0r = tl.load(ckr + ck_base + ck_off, mask=md[:, None], other=0.0)
    if B_CPLX:
        nx_bi = tl.load(Bi + bc_rows + t[None, :], mask=m_nt, other=0.0)
    if C_CPLX:
        nx_ci = tl.load(Ci + bc_rows + t[None, :], mask=m_nt, other=0.0)
    if CPLX:
        nx_h0i = tl.load(cki + ck_base + ck_off, mask=md[:, None], other=0.0)
    for i in range(n_chunks):
        c = n_chunks - 1 - i
        t = c * T + j
        mt = t < L
        m_dt = md[:, None] & mt[None, :]
        m_nt = mn[:, None] & mt[None, :]
        uu = nx_u
        g = nx_g
        raw = nx_raw
        br_ld = nx_br
        cr_ld = nx_cr
        h0r = nx_h0r[:, :, None]
        if B_CPLX:
            bi_ld = nx_bi
        if C_CPLX:
            ci_ld = nx_ci
        if CPLX:
            h0i = nx_h0i[:, :, None]
        tp = t - T
        mtp = tp >= 0
        m_dtp = md[:, None] & mtp[None, :]
        m_ntp = mn[:, None] & mtp[None, :]
        ck_base = (pid_b * n_chunks + c - 1) * D * BN
        m_ckp = md[:, None] & (n[None, :] * 0 + c > 0)
        nx_u = tl.load(u + dl_rows + tp[None, :], mask=m_dtp, other=0.0)
        nx_g = tl.load(dy + dl_rows + tp[None, :], mask=m_dtp, other=0.0)
        ptr, m = _delta_ptrs(dlt, pid_b, grp, d, n, tp, md, mn, mtp, D, N, L, G, DELTA_MODE)
        nx_raw = tl.load(ptr, mask=m, other=0.0)
        nx_br = tl.load(Br + bc_rows + tp[None, :], mask=m_ntp, other=0.0)
        nx_cr = tl.load(Cr + bc_rows + tp[None, :], mask=m_ntp, other=0.0)
        nx_h0r = tl.load(ckr + ck_base + ck_off, mask=m_ckp, other=0.0)
        if B_CPLX:
            nx_bi = tl.load(Bi + bc_rows + tp[None, :], mask=m_ntp, other=0.0)
        if C_CPLX:
            nx_ci = tl.load(Ci + bc_rows + tp[None, :], mask=m_ntp, other=0.0)
        if CPLX:
            nx_h0i = tl.load(cki + ck_base + ck_off, mask=m_ckp, other=0.0)
        _, m = _delta_ptrs(dlt, pid_b, grp, d, n, t, md, mn, mt, D, N, L, G, DELTA_MODE)
        dl = _delta_act(raw, m, SOFTPLUS)
        part_off = part * N * L + n[:, None] * L + t[None, :]
        coef = uu[:, None, :]
        if INPUT_DELTA:
            coef = coef * dl
        br_t = br_ld[None, :, :]
        cr_t = cr_ld[None, :, :]
        g3 = g[:, None, :]
        # the carries enter the scans as the first element's input (forward, from the checkpoint) and the last
        # element's (adjoint): within one chunk a product of per-step factors is exact enough, and the checkpoints
        # come from the forward, whose carries decay by the running sum of Δ
        a_r, a_i = _decay(dl, ar2, ai2, A_CPLX)
        zero = tl.zeros_like(a_r)
        one = zero + 1.0
        if CPLX:
            if B_CPLX:
                bi_t = bi_ld[None, :, :]
            else:
                bi_t = tl.zeros_like(br_t)
            if C_CPLX:
                ci_t = ci_ld[None, :, :]
            else:
                ci_t = tl.zeros_like(cr_t)
            b_r = coef * br_t + tl.where(first, a_r * h0r - a_i * h0i, 0.0)
            b_i = coef * bi_t + tl.where(first, a_r * h0i + a_i * h0r, 0.0)
            # forward: h_t (carry folded into the first element) and h_{t−1} (first element's prev = the carry)
            _, _, h_r, h_i, _, _, p_r, p_i = tl.associative_scan(
                (a_r, a_i, b_r, b_i, tl.where(first, zero, one), zero,
                 tl.where(first, h0r, zero), tl.where(first, h0i, zero)), 2, _affine_prev_cplx)
            # adjoint: κ_t = conj(a_t)(β_t + κ_{t+1}), β_t = g_t conj(C_t); λ_t = β_t + κ_{t+1}
            be_r = g3 * cr_t
            be_i = -g3 * ci_t
            _, _, k_r, k_i, _, _, kp_r, kp_i = tl.associative_scan(
                (a_r, -a_i,
                 a_r * be_r + a_i * be_i + tl.where(last, a_r * kr[:, :, None] + a_i * ki[:, :, None], 0.0),
                 a_r * be_i - a_i * be_r + tl.where(last, a_r * ki[:, :, None] - a_i * kr[:, :, None], 0.0),
                 tl.where(last, zero, one), zero, tl.where(last, kr[:, :, None], zero),
                 tl.where(last, ki[:, :, None], zero)), 2, _affine_prev_cplx, reverse=True)
            lam_r = be_r + kp_r
            lam_i = be_i + kp_i
            ki = tl.sum(tl.where(first, k_i, 0.0), axis=2)
            # q = a_t h_{t−1}; ∂/∂Δ through a: Re(conj(A q) λ); ∂/∂A: Δ conj(q) λ
            q_r = a_r * p_r - a_i * p_i
            q_i = a_r * p_i + a_i * p_r
            if A_CPLX:
                z_r = ar_ * q_r - ai_ * q_i
                z_i = ar_ * q_i + ai_ * q_r
            else:
                z_r = ar_ * q_r
                z_i = ar_ * q_i
            s = br_t * lam_r + bi_t * lam_i
            dlt_term = z_r * lam_r + z_i * lam_i
            gAr += tl.sum(dl * (q_r * lam_r + q_i * lam_i), axis=2)
            if A_CPLX:
                gAi += tl.sum(dl * (q_r * lam_i - q_i * lam_r), axis=2)
            gCr = tl.sum(g3 * h_r, axis=0)
            gCi = -tl.sum(g3 * h_i, axis=0)
            gBr = tl.sum(coef * lam_r, axis=0)
            gBi = tl.sum(coef * lam_i, axis=0)
        else:
            b_r = coef * br_t + tl.where(first, a_r * h0r, 0.0)
            _, h_r, _, p_r = tl.associative_scan(
                (a_r, b_r, tl.where(first, zero, one), tl.where(first, h0r, zero)), 2, _affine_prev_real)
            be_r = g3 * cr_t
            _, k_r, _, kp_r = tl.associative_scan(
                (a_r, a_r * be_r + tl.where(last, a_r * kr[:, :, None], 0.0), tl.where(last, zero, one),
                 tl.where(last, kr[:, :, None], zero)), 2, _affine_prev_real, reverse=True)
            lam_r = be_r + kp_r
            q_r = a_r * p_r
            s = br_t * lam_r
            dlt_term = ar_ * q_r * lam_r
            gAr += tl.sum(dl * q_r * lam_r, axis=2)
            gCr = tl.sum(g3 * h_r, axis=0)
            gBr = tl.sum(coef * lam_r, axis=0)
        kr = tl.sum(tl.where(first, k_r, 0.0), axis=2)
        # u and Δ
        if INPUT_DELTA:
            gu = tl.sum(dl * s, axis=1)
            dlt_term += uu[:, None, :] * s
        else:
            gu = tl.sum(s, axis=1)
        if HAS_D:
            gu += dskip * g
        if HAS_D:
            gD += tl.sum(g * uu, axis=1)
        tl.store(du + pid_b * D * L + d[:, None] * L + t[None, :], gu, mask=m_dt)
        if DELTA_MODE == 0:
            gdl = tl.sum(dlt_term, axis=1)
            if SOFTPLUS:
                gdl *= _sigmoid(tl.reshape(raw, (BD, T)))
            tl.store(ddlt + pid_b * D * L + d[:, None] * L + t[None, :], gdl, mask=m_dt)
        elif DELTA_MODE == 1:
            gdl = tl.sum(dlt_term, axis=0)
            if SOFTPLUS:
                gdl *= _sigmoid(tl.reshape(raw, (BN, T)))
            tl.store(ddlt + part_off, gdl, mask=m_nt)
        else:
            gdl = tl.sum(tl.sum(dlt_term, axis=1), axis=0)
            if SOFTPLUS:
                gdl *= _sigmoid(tl.reshape(raw, (T,)))
            tl.store(ddlt + part * L + t, gdl, mask=mt)
        tl.store(dBr + part_off, gBr, mask=m_nt)
        tl.store(dCr + part_off, gCr, mask=m_nt)
        if B_CPLX:
            tl.store(dBi + part_off, gBi, mask=m_nt)
        if C_CPLX:
            tl.store(dCi + part_off, gCi, mask=m_nt)
    tl.store(dAr + pid_b * D * N + a_off, gAr, mask=m_dn)
    if A_CPLX:
        tl.store(dAi + pid_b * D * N + a_off, gAi, mask=m_dn)
    if HAS_D:
        tl.store(dD + pid_b * D + d, gD, mask=md)


def _pow2(x: int) -> int:
    return triton.next_power_of_2(max(int(x), 1))


#: (BD, T, num_warps) by BN (N rounded up to a power of two) for the forward alone, the forward that stores the
#: checkpoints of a backward, and the backward ("ckpt" and "bwd" share T, the checkpoint interval). N = 8 and 16
#: are the fastest of an H100 sweep (benchmarks/results/scan-h100.md): at (32, 1024, 16, 4096) the forward with
#: checkpoints plus the backward take 16.5 ms at (32, 8, 4) against 30.5 ms at (16, 8, 4); at the trainer's
#: (16, 2048, 8, 50) 0.25 ms at (16, 8, 4) against 0.35 ms at (32, 8, 4). N = 32 and 64 were chosen by compiling
#: for sm_90 (ptxas -v on the kernels' PTX): their forward uses no local memory, their backward at most 12 bytes.
CONFIGS = {
    "fwd": {8: (32, 4, 1), 16: (16, 8, 2), 32: (8, 8, 4), 64: (8, 8, 4)},
    "ckpt": {8: (16, 8, 4), 16: (32, 8, 4), 32: (8, 8, 4), 64: (4, 8, 4)},
    "bwd": {8: (16, 8, 4), 16: (32, 8, 4), 32: (8, 8, 4), 64: (4, 8, 4)},
}


def default_config(dim: int, nstate: int, length: int, kind: str) -> tuple[int, int, int]:
    """(BD, T, num_warps) for a problem: channels per program, chunk length, warps (:data:`CONFIGS`; N > 64 takes
    the N = 64 row with BD scaled down). The tile is BD·BN·T elements."""
    if kind not in CONFIGS:
        raise ValueError(f"kind must be one of {', '.join(CONFIGS)}, got {kind!r}")
    bn = _pow2(nstate)
    bd, t, warps = CONFIGS[kind][min(max(bn, 8), 64)]
    if bn > 64:
        bd = max(1, bd * 64 // bn)
    bd, t = min(bd, _pow2(dim)), min(t, _pow2(length))
    if INTERPRETING:
        # the interpreter's cost is per (padded) tile element and per scan step: short chunks, little padding
        bd, t = min(bd, 4), min(t, 16)
    return bd, t, warps


def _compute_dtype(*tensors) -> torch.dtype:
    wide = any(x is not None and x.dtype in (torch.float64, torch.complex128) for x in tensors)
    return torch.float64 if wide else torch.float32


def _parts(x: torch.Tensor | None, dtype: torch.dtype):
    """(real, imag) contiguous parts of x in ``dtype``; imag is None for a real x."""
    if x is None:
        return None, None
    if x.is_complex():
        return x.real.to(dtype).contiguous(), x.imag.to(dtype).contiguous()
    return x.to(dtype).contiguous(), None


def _groups(B: torch.Tensor, dim: int) -> tuple[int, int]:
    """(G, channels per group) of B: grouped (batch, G, N, L), or one group of all D channels."""
    G = B.shape[1] if B.dim() == 4 else 1
    return G, dim // G


def _block(bd: int, groups: int, per_group: int) -> int:
    """With grouped B, C: the largest power of two ≤ bd dividing the channels of a group, so that a channel block
    lies in one group. Ungrouped, bd as it is (the last block is masked)."""
    while groups > 1 and per_group % bd:
        bd //= 2
    return bd


def _sum_blocks(x: torch.Tensor, groups: int, grouped: bool) -> torch.Tensor:
    """Sum the per-channel-block partials (batch, blocks, ...) over the blocks of each group: (batch, G, ...), or
    (batch, ...) for ungrouped B, C."""
    batch, blocks = x.shape[:2]
    x = x.reshape(batch, groups, blocks // groups, *x.shape[2:]).sum(2)
    return x if grouped else x[:, 0]


def _alloc(shape, like: torch.Tensor) -> torch.Tensor:
    if POISON:
        return torch.full(shape, float("nan"), dtype=like.dtype, device=like.device)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def scan_fwd(u, delta, A, B, C, D=None, *, delta_mode="channel", input_delta=True, delta_softplus=False,
             return_last_state=False, save_ckpt=False, config=None):
    """Launch the forward kernel. Shapes as :func:`kernels.reference.selective_scan_ref` (not re-checked here),
    B and C ungrouped (batch, N, L) or grouped (batch, G, N, L).

    Returns (y, h_L or None, ckpt or None): y (batch, D, L) in the promoted real dtype of u and delta; h_L
    (batch, D, N), complex when A, B or C is; ckpt the chunk-start states for :func:`scan_bwd`, as a tuple
    (real, imag or None, T) of (batch, n_chunks, D, BN) tensors."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    groups, per_group = _groups(B, dim)
    cd = _compute_dtype(u, delta, A, B, C, D)
    bd, t, warps = config or default_config(dim, nstate, length, "ckpt" if save_ckpt else "fwd")
    bd = _block(bd, groups, per_group)
    bn = _pow2(nstate)
    n_chunks = triton.cdiv(length, t)
    u_ = u.to(cd).contiguous()
    dl_ = delta.to(cd).contiguous()
    ar, ai = _parts(A, cd)
    br, bi = _parts(B, cd)
    cr, ci = _parts(C, cd)
    dv = D.to(cd).contiguous() if D is not None else None
    cplx = ai is not None or bi is not None or ci is not None
    y = _alloc((batch, dim, length), u_)
    h_r = h_i = ck_r = ck_i = None
    if return_last_state:
        h_r = _alloc((batch, dim, nstate), u_)
        h_i = _alloc((batch, dim, nstate), u_) if cplx else None
    if save_ckpt:
        ck_r = _alloc((batch, n_chunks, dim, bn), u_)
        ck_i = _alloc((batch, n_chunks, dim, bn), u_) if cplx else None
    grid = (batch, triton.cdiv(dim, bd))
    _scan_fwd_kernel[grid](
        u_, dl_, ar, ai, br, bi, cr, ci, dv, y, h_r, h_i, ck_r, ck_i,
        dim, nstate, length, groups, per_group, n_chunks,
        DELTA_MODE=DELTA_MODE_ID[delta_mode], INPUT_DELTA=bool(input_delta), SOFTPLUS=bool(delta_softplus),
        A_CPLX=ai is not None, B_CPLX=bi is not None, C_CPLX=ci is not None, HAS_D=dv is not None,
        SAVE_CKPT=bool(save_ckpt), SAVE_LAST=bool(return_last_state), BD=bd, BN=bn, T=t, num_warps=warps)
    out_dtype = torch.promote_types(u.dtype, delta.dtype)
    h_last = None
    if return_last_state:
        h_last = torch.complex(h_r, h_i) if cplx else h_r
    ckpt = (ck_r, ck_i, t) if save_ckpt else None
    return y.to(out_dtype), h_last, ckpt


def scan_bwd(u, delta, A, B, C, D, dy, dh_last, ckpt, *, delta_mode="channel", input_delta=True,
             delta_softplus=False, config=None):
    """Launch the backward kernel on the checkpoints of :func:`scan_fwd` (``save_ckpt=True``).

    dy: (batch, D, L) gradient of y; dh_last: gradient of h_L (batch, D, N) or None.
    Returns (du, dΔ, dA, dB, dC, dD), each in the dtype and shape of its input (dD None when D is None)."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    groups, per_group = _groups(B, dim)
    grouped = B.dim() == 4
    ck_r, ck_i, t = ckpt
    cd = ck_r.dtype
    if config is None:
        bd, _, warps = default_config(dim, nstate, length, "bwd")
    else:
        bd, _, warps = config
    bd = _block(bd, groups, per_group)
    bn = _pow2(nstate)
    n_chunks = triton.cdiv(length, t)
    u_ = u.to(cd).contiguous()
    dl_ = delta.to(cd).contiguous()
    ar, ai = _parts(A, cd)
    br, bi = _parts(B, cd)
    cr, ci = _parts(C, cd)
    dv = D.to(cd).contiguous() if D is not None else None
    dy_ = dy.to(cd).contiguous()
    dhr, dhi = _parts(dh_last, cd)
    cplx = ck_i is not None
    if cplx and dh_last is not None and dhi is None:
        dhi = torch.zeros_like(dhr)
    n_dblocks = triton.cdiv(dim, bd)
    du = _alloc((batch, dim, length), u_)
    if delta_mode == "channel":
        ddl = _alloc(dl_.shape, u_)
    else:
        ddl = _alloc((batch, n_dblocks) + tuple(dl_.shape[2 if grouped else 1:]), u_)
    dAr = _alloc((batch, dim, nstate), u_)
    dAi = _alloc((batch, dim, nstate), u_) if ai is not None else None
    part = (batch, n_dblocks, nstate, length)
    dBr = _alloc(part, u_)
    dBi = _alloc(part, u_) if bi is not None else None
    dCr = _alloc(part, u_)
    dCi = _alloc(part, u_) if ci is not None else None
    dD = _alloc((batch, dim), u_) if dv is not None else None
    grid = (batch, n_dblocks)
    _scan_bwd_kernel[grid](
        u_, dl_, ar, ai, br, bi, cr, ci, dv, dy_, dhr, dhi, ck_r, ck_i,
        du, ddl, dAr, dAi, dBr, dBi, dCr, dCi, dD,
        dim, nstate, length, groups, per_group, n_chunks,
        DELTA_MODE=DELTA_MODE_ID[delta_mode], INPUT_DELTA=bool(input_delta), SOFTPLUS=bool(delta_softplus),
        A_CPLX=ai is not None, B_CPLX=bi is not None, C_CPLX=ci is not None, HAS_D=dv is not None,
        HAS_DH=dhr is not None, BD=bd, BN=bn, T=t, num_warps=warps)
    dA = dAr.sum(0)
    if ai is not None:
        dA = torch.complex(dA, dAi.sum(0))
    dBr, dBi, dCr, dCi = (None if x is None else _sum_blocks(x, groups, grouped) for x in (dBr, dBi, dCr, dCi))
    if delta_mode != "channel":
        ddl = _sum_blocks(ddl, groups, grouped)
    dB = torch.complex(dBr, dBi) if bi is not None else dBr
    dC = torch.complex(dCr, dCi) if ci is not None else dCr
    return (du.to(u.dtype), ddl.to(delta.dtype), dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
            dD.sum(0).to(D.dtype) if D is not None else None)
