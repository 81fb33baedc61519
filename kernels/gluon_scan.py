"""Gluon kernels of the scan engine: the CUDA fast path of :mod:`kernels.triton_scan` for real float32 scans.

Same recurrence, modes and outputs as :mod:`kernels.triton_scan` (Δ per channel, per state or scalar; ``input_delta``;
softplus; D; grouped B, C; last state), for real A, B, C in float32. Complex and float64 scans, and every scan under
``TRITON_INTERPRET=1`` (which cannot run Gluon), take the Triton kernels.

Layout (explicit, which plain Triton's heuristics did not give). A program owns (batch b, BD channels) and walks the
sequence in chunks of T steps. A chunk is a (BD, BN, T) register tile in the blocked layout

    size_per_thread [1, NPT, T],  threads_per_warp [TPD, TPN, 1],  warps_per_cta [W, 1, 1]

so one thread holds one channel, NPT of its states and all T steps: time runs inside the thread, step by step
(``gl.static_range``; a step of a tile is read by selects that fold at compile time, :func:`_at`), the sums over
states cross TPN = BN/NPT lanes, and BD = TPD·W. u, Δ, dy and y are (BD, T) tiles, one 32-byte row segment per
thread for T = 8; B, C are (BN, T) tiles every channel lane reads (broadcast in L1).

Forward carries. Per step, q ← a·q + coef·B is the chunk from zero and p ← a·p its decay; the state entering the
chunk h_c is added as h_t = p_t·h_c + q_t. h_c is held as exp2(ℓ)·s: ℓ accumulates A·log2e·ΣΔ over the chunks and
s (a compensated sum) only the chunks' new inputs q_T·exp2(−ℓ), until |ℓ| exceeds 0.72 (a factor e^{±1/2}) and the
state is materialised. A product of per-step factors that round to 1 (Δ = 1e-8) therefore never carries the decay
from chunk to chunk: it lives in ℓ. One exponential per element, two per (channel, state) per chunk.

Input ring (STAGES > 1, both kernels). A chunk's u, Δ, B, C (and the backward's dy) are copied with cp.async into a
ring of STAGES shared-memory slots, STAGES − 1 chunks ahead of the one computing, instead of loaded when the chunk
starts (:func:`_copy_chunk`, :func:`_chunk_from_ring`); the tiles and the arithmetic are those of the direct loads.
By default only the forward uses it, and only from :data:`RING_MIN_LENGTH` steps on (:func:`forward_config`).

Backward. The forward stores h_c at every chunk start (batch, L/T, D, BN); the backward walks the chunks from the
last, rebuilds a_t and h_t step by step from h_c, then walks the steps backwards with the adjoint
λ_t = g_t·C_t + κ, κ ← a_t·λ_t (h_{t−1} read from the rebuilt tile, h_c at the first step: nothing divides by a).
dA is summed in registers over the chunks; dB, dC (and dΔ of the state and scalar modes) are summed over the
program's channels through shared memory (:func:`_sum_channels`) and written as one partial per program, summed
per group by PyTorch (deterministic).
"""
from __future__ import annotations

import functools

import torch
import triton

try:
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl
    from triton.experimental.gluon.language.nvidia.ampere import async_copy
    AVAILABLE = True
except ImportError:                                      # a triton without Gluon: the Triton kernels serve
    AVAILABLE = False

from .triton_scan import DELTA_MODE_ID, _alloc, _groups, _pow2, _sum_blocks


if AVAILABLE:
    @gluon.jit
    def _softplus(x):
        """log(1 + e^x) without overflow, log1p kept accurate for tiny arguments."""
        e = gl.exp(-gl.abs(x))
        w = 1.0 + e
        lp = gl.where(w == 1.0, e, gl.log(w) * e / gl.where(w == 1.0, 1.0, w - 1.0))
        return gl.maximum(x, 0.0) + lp

    @gluon.jit
    def _sigmoid(x):
        e = gl.exp(-gl.abs(x))
        return gl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    @gluon.jit
    def _at(x, j3, k: gl.constexpr):
        """Step k of a tile whose time axis (2) lies inside the thread: the selects fold at compile time and the
        sum of −0.0s with one value is that value, so this costs no instruction."""
        return gl.sum(gl.where(j3 == k, x, -0.0), axis=2)

    @gluon.jit
    def _sum_channels(x, LR: gl.constexpr):
        """Σ over the channels (axis 0) of a (BD, BN, T) tile: moved through shared memory into LR, where each
        thread holds all BD channels of its (state, step) positions, and summed inside the thread."""
        return gl.sum(gl.convert_layout(x, LR), axis=0)

    @gluon.jit
    def _kahan(total, comp, value):
        y = value - comp
        t = total + y
        return t, (t - total) - y

    @gluon.jit
    def _delta_act(raw, m, DELTA_MODE: gl.constexpr, SOFTPLUS: gl.constexpr):
        """Δ from its loaded values ``raw`` (mask m, the mode's shape (BD, T), (BN, T) or (T,)): softplus applied
        when asked, as a tile broadcastable to (BD, BN, T)."""
        if SOFTPLUS:
            dl = gl.where(m, _softplus(raw), 0.0)
        else:
            dl = raw
        if DELTA_MODE == 0:
            dl3 = dl[:, None, :]
        elif DELTA_MODE == 1:
            dl3 = dl[None, :, :]
        else:
            dl3 = dl[None, :][None, :, :]
        return dl3

    @gluon.jit
    def _delta_tile(dlt, pid_b, grp, d_t, md_t, n_t, mn_t, t_d, t_n, D, N, L, G,
                    DELTA_MODE: gl.constexpr, SOFTPLUS: gl.constexpr):
        """The chunk's Δ as a tile broadcastable to (BD, BN, T) and its pre-activation (for the backward's
        softplus derivative) in the mode's own shape: (BD, T), (BN, T) or (T,)."""
        if DELTA_MODE == 0:
            m = md_t[:, None] & (t_d < L)[None, :]
            raw = gl.load(dlt + pid_b * D * L + d_t[:, None] * L + t_d[None, :], mask=m, other=0.0)
        elif DELTA_MODE == 1:
            m = mn_t[:, None] & (t_n < L)[None, :]
            raw = gl.load(dlt + (pid_b * G + grp) * N * L + n_t[:, None] * L + t_n[None, :], mask=m, other=0.0)
        else:
            m = t_n < L
            raw = gl.load(dlt + (pid_b * G + grp) * L + t_n, mask=m, other=0.0)
        dl3 = _delta_act(raw, m, DELTA_MODE, SOFTPLUS)
        return dl3, raw

    @gluon.jit
    def _indices(pid_d, D, N, BD: gl.constexpr, BN: gl.constexpr, T: gl.constexpr, L3: gl.constexpr):
        """A program's channel, state and step indices in the three slices of L3, with their masks: d_h, n_h
        index the (BD, BN) state tile, d_t, j_d the (BD, T) tiles, n_t, j_n the (BN, T) tiles."""
        LH: gl.constexpr = gl.SliceLayout(2, L3)
        LDT: gl.constexpr = gl.SliceLayout(1, L3)
        LNT: gl.constexpr = gl.SliceLayout(0, L3)
        d_h = pid_d * BD + gl.arange(0, BD, layout=gl.SliceLayout(1, LH))
        n_h = gl.arange(0, BN, layout=gl.SliceLayout(0, LH))
        d_t = pid_d * BD + gl.arange(0, BD, layout=gl.SliceLayout(1, LDT))
        j_d = gl.arange(0, T, layout=gl.SliceLayout(0, LDT))
        n_t = gl.arange(0, BN, layout=gl.SliceLayout(1, LNT))
        j_n = gl.arange(0, T, layout=gl.SliceLayout(0, LNT))
        md_h = d_h < D
        m_dn = md_h[:, None] & (n_h < N)[None, :]
        return d_h, n_h, d_t, j_d, n_t, j_n, md_h, m_dn, d_t < D, n_t < N

    @gluon.jit
    def _chunk_inputs(u, dlt, Bp, Cp, c, rows, bc_rows, pid_b, grp, d_t, md_t, j_d, n_t, mn_t, j_n, D, N, L, G,
                      T: gl.constexpr, DELTA_MODE: gl.constexpr, SOFTPLUS: gl.constexpr, INPUT_DELTA: gl.constexpr):
        """Chunk c's inputs: its steps t_d and mask m_dt of the (BD, T) tiles, u, Δ (:func:`_delta_tile`), B and C
        as (1, BN, T) tiles, and the input's coefficient u (times Δ with ``INPUT_DELTA``) as a (BD, ·, T) tile."""
        t_d = c * T + j_d
        t_n = c * T + j_n
        m_dt = md_t[:, None] & (t_d < L)[None, :]
        m_nt = mn_t[:, None] & (t_n < L)[None, :]
        uu = gl.load(u + rows + t_d[None, :], mask=m_dt, other=0.0)
        dl3, raw = _delta_tile(dlt, pid_b, grp, d_t, md_t, n_t, mn_t, t_d, t_n, D, N, L, G, DELTA_MODE, SOFTPLUS)
        bb = gl.load(Bp + bc_rows + t_n[None, :], mask=m_nt, other=0.0)[None, :, :]
        cc = gl.load(Cp + bc_rows + t_n[None, :], mask=m_nt, other=0.0)[None, :, :]
        coef = uu[:, None, :]
        if INPUT_DELTA:
            coef = coef * dl3
        return t_d, m_dt, uu, dl3, raw, bb, cc, coef

    @gluon.jit
    def _ring(BD: gl.constexpr, BN: gl.constexpr, T: gl.constexpr, STAGES: gl.constexpr,
              DELTA_MODE: gl.constexpr):
        """The shared-memory ring of a chunk's inputs: STAGES slots each of u (BD, T), Δ in its mode's shape, B and
        C (BN, T). The layouts name a slot's axes."""
        S2: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
        u_s = gl.allocate_shared_memory(gl.float32, [STAGES, BD, T], S2)
        b_s = gl.allocate_shared_memory(gl.float32, [STAGES, BN, T], S2)
        c_s = gl.allocate_shared_memory(gl.float32, [STAGES, BN, T], S2)
        if DELTA_MODE == 0:
            dl_s = gl.allocate_shared_memory(gl.float32, [STAGES, BD, T], S2)
        elif DELTA_MODE == 1:
            dl_s = gl.allocate_shared_memory(gl.float32, [STAGES, BN, T], S2)
        else:
            dl_s = gl.allocate_shared_memory(gl.float32, [STAGES, T], gl.SwizzledSharedLayout(1, 1, 1, [0]))
        return u_s, dl_s, b_s, c_s

    @gluon.jit
    def _copy_rows(dst, slot, src, c, pid_b, pid_d, D, L, BD: gl.constexpr, T: gl.constexpr, LC: gl.constexpr):
        """Start the asynchronous copy (cp.async) of chunk c of the program's channels of a (batch, D, L) tensor
        into ``dst``'s slot ``slot``, in the copy layout LC (16-byte row segments); steps outside [0, L) (chunks
        before the first or past the last) are filled with zeros."""
        j = c * T + gl.arange(0, T, layout=gl.SliceLayout(0, LC))
        d = pid_d * BD + gl.arange(0, BD, layout=gl.SliceLayout(1, LC))
        m = (d < D)[:, None] & ((j >= 0) & (j < L))[None, :]
        async_copy.async_copy_global_to_shared(dst.index(slot), src + pid_b * D * L + d[:, None] * L + j[None, :],
                                               mask=m)

    @gluon.jit
    def _copy_chunk(u_s, dl_s, b_s, c_s, slot, u, dlt, Bp, Cp, c, pid_b, pid_d, grp, D, N, L, G,
                    BD: gl.constexpr, BN: gl.constexpr, T: gl.constexpr, DELTA_MODE: gl.constexpr,
                    LC: gl.constexpr):
        """Start the asynchronous copies of chunk c's u, Δ, B and C into ring slot ``slot`` (:func:`_copy_rows`;
        the caller commits the group)."""
        _copy_rows(u_s, slot, u, c, pid_b, pid_d, D, L, BD, T, LC)
        j = c * T + gl.arange(0, T, layout=gl.SliceLayout(0, LC))
        m_j = (j >= 0) & (j < L)
        n = gl.arange(0, BN, layout=gl.SliceLayout(1, LC))
        m_n = (n < N)[:, None] & m_j[None, :]
        bc = (pid_b * G + grp) * N * L + n[:, None] * L + j[None, :]
        if DELTA_MODE == 0:
            _copy_rows(dl_s, slot, dlt, c, pid_b, pid_d, D, L, BD, T, LC)
        elif DELTA_MODE == 1:
            async_copy.async_copy_global_to_shared(dl_s.index(slot), dlt + bc, mask=m_n)
        else:
            async_copy.async_copy_global_to_shared(dl_s.index(slot), dlt + (pid_b * G + grp) * L + j, mask=m_j)
        async_copy.async_copy_global_to_shared(b_s.index(slot), Bp + bc, mask=m_n)
        async_copy.async_copy_global_to_shared(c_s.index(slot), Cp + bc, mask=m_n)

    @gluon.jit
    def _chunk_from_ring(u_s, dl_s, b_s, c_s, slot, c, d_t, md_t, j_d, n_t, mn_t, j_n, L, T: gl.constexpr,
                         DELTA_MODE: gl.constexpr, SOFTPLUS: gl.constexpr, INPUT_DELTA: gl.constexpr,
                         L3: gl.constexpr, STAGES: gl.constexpr):
        """As :func:`_chunk_inputs`, the tiles read from ring slot ``slot`` (filled by :func:`_copy_chunk`) once
        its copies are done: at most STAGES − 2 groups still in flight, and seen by every thread after the
        barrier, which also tells that the slot copied into next was read by all."""
        async_copy.wait_group(STAGES - 2)
        gl.thread_barrier()
        LDT: gl.constexpr = gl.SliceLayout(1, L3)
        LNT: gl.constexpr = gl.SliceLayout(0, L3)
        t_d = c * T + j_d
        t_n = c * T + j_n
        m_dt = md_t[:, None] & (t_d < L)[None, :]
        uu = u_s.index(slot).load(LDT)
        if DELTA_MODE == 0:
            raw = dl_s.index(slot).load(LDT)
            m_dl = m_dt
        elif DELTA_MODE == 1:
            raw = dl_s.index(slot).load(LNT)
            m_dl = mn_t[:, None] & (t_n < L)[None, :]
        else:
            raw = dl_s.index(slot).load(gl.SliceLayout(0, LNT))
            m_dl = t_n < L
        dl3 = _delta_act(raw, m_dl, DELTA_MODE, SOFTPLUS)
        bb = b_s.index(slot).load(LNT)[None, :, :]
        cc = c_s.index(slot).load(LNT)[None, :, :]
        coef = uu[:, None, :]
        if INPUT_DELTA:
            coef = coef * dl3
        return t_d, m_dt, uu, dl3, raw, bb, cc, coef

    @gluon.jit
    def _fwd_kernel(u, dlt, Ar, Bp, Cp, Dv, y, h_out, ck,
                    D, N, L, G, CPG, n_chunks,
                    DELTA_MODE: gl.constexpr, INPUT_DELTA: gl.constexpr, SOFTPLUS: gl.constexpr,
                    HAS_D: gl.constexpr, SAVE_CKPT: gl.constexpr, SAVE_LAST: gl.constexpr,
                    BD: gl.constexpr, BN: gl.constexpr, T: gl.constexpr, L3: gl.constexpr,
                    STAGES: gl.constexpr, LC: gl.constexpr):
        """y (batch, D, L); grid (batch, cdiv(D, BD)). With STAGES > 1 the chunks' inputs come through a ring of
        STAGES shared-memory slots, chunk c + STAGES − 1 copied while chunk c computes; STAGES = 1 loads each chunk
        when it is needed."""
        LH: gl.constexpr = gl.SliceLayout(2, L3)
        LDT: gl.constexpr = gl.SliceLayout(1, L3)
        pid_b = gl.program_id(0)
        pid_d = gl.program_id(1)
        grp = (pid_d * BD) // CPG
        d_h, n_h, d_t, j_d, n_t, j_n, md_h, m_dn, md_t, mn_t = _indices(pid_d, D, N, BD, BN, T, L3)
        a2 = gl.load(Ar + d_h[:, None] * N + n_h[None, :], mask=m_dn, other=0.0) * 1.4426950408889634
        LD: gl.constexpr = gl.SliceLayout(1, LDT)
        j3 = j_n[None, :][None, :, :]
        if HAS_D:
            dskip = gl.load(Dv + d_t, mask=md_t, other=0.0)[:, None]
        s = gl.zeros((BD, BN), gl.float32, LH)
        comp = gl.zeros((BD, BN), gl.float32, LH)
        ell = gl.zeros((BD, BN), gl.float32, LH)
        rows = pid_b * D * L + d_t[:, None] * L
        bc_rows = (pid_b * G + grp) * N * L + n_t[:, None] * L
        ck_off = d_h[:, None] * BN + n_h[None, :]
        if STAGES > 1:
            u_s, dl_s, b_s, c_s = _ring(BD, BN, T, STAGES, DELTA_MODE)
            for k in gl.static_range(STAGES - 1):
                _copy_chunk(u_s, dl_s, b_s, c_s, k, u, dlt, Bp, Cp, k, pid_b, pid_d, grp, D, N, L, G,
                            BD, BN, T, DELTA_MODE, LC)
                async_copy.commit_group()
        for c in range(n_chunks):
            hc = gl.exp2(ell) * s
            if SAVE_CKPT:
                gl.store(ck + (pid_b * n_chunks + c) * D * BN + ck_off, hc, mask=md_h[:, None])
            if STAGES > 1:
                t_d, m_dt, uu, dl3, raw, bb, cc, coef = _chunk_from_ring(
                    u_s, dl_s, b_s, c_s, c % STAGES, c, d_t, md_t, j_d, n_t, mn_t, j_n, L, T,
                    DELTA_MODE, SOFTPLUS, INPUT_DELTA, L3, STAGES)
                _copy_chunk(u_s, dl_s, b_s, c_s, (c + STAGES - 1) % STAGES, u, dlt, Bp, Cp, c + STAGES - 1,
                            pid_b, pid_d, grp, D, N, L, G, BD, BN, T, DELTA_MODE, LC)
                async_copy.commit_group()
            else:
                t_d, m_dt, uu, dl3, raw, bb, cc, coef = _chunk_inputs(
                    u, dlt, Bp, Cp, c, rows, bc_rows, pid_b, grp, d_t, md_t, j_d, n_t, mn_t, j_n, D, N, L, G,
                    T, DELTA_MODE, SOFTPLUS, INPUT_DELTA)
            # the chunk from zero (q) and its decay (p), step by step inside the thread; h_t = p_t·h_c + q_t
            q = gl.zeros((BD, BN), gl.float32, LH)
            p = gl.full((BD, BN), 1.0, gl.float32, LH)
            yy = gl.zeros((BD, T), gl.float32, LDT)
            for k in gl.static_range(T):
                ak = gl.exp2(_at(dl3, j3, k) * a2)
                q = ak * q + _at(coef, j3, k) * _at(bb, j3, k)
                p = p * ak
                yk = gl.sum((p * hc + q) * _at(cc, j3, k), axis=1)
                yy = gl.where(j_d[None, :] == k, gl.convert_layout(yk, LD, assert_trivial=True)[:, None], yy)
            if HAS_D:
                yy += dskip * uu
            gl.store(y + rows + t_d[None, :], yy, mask=m_dt)
            # the carry: its decay into ℓ while within e^{±1/2}, the chunk's input into s; beyond, materialised
            x2 = ell + gl.sum(dl3, axis=2) * a2
            keep = gl.abs(x2) <= 0.72
            q_end = q
            h_end = p * hc + q
            s_k, c_k = _kahan(s, comp, q_end * gl.exp2(-x2))
            s = gl.where(keep, s_k, h_end)
            comp = gl.where(keep, c_k, 0.0)
            ell = gl.where(keep, x2, 0.0)
        if STAGES > 1:
            async_copy.wait_group(0)             # the copies past the last chunk land before the program ends
        if SAVE_LAST:
            gl.store(h_out + pid_b * D * N + d_h[:, None] * N + n_h[None, :], gl.exp2(ell) * s, mask=m_dn)

    @gluon.jit
    def _bwd_kernel(u, dlt, Ar, Bp, Cp, Dv, dy, dh, ck, du, ddlt, dA, dB, dC, dD,
                    D, N, L, G, CPG, n_chunks,
                    DELTA_MODE: gl.constexpr, INPUT_DELTA: gl.constexpr, SOFTPLUS: gl.constexpr,
                    HAS_D: gl.constexpr, HAS_DH: gl.constexpr,
                    BD: gl.constexpr, BN: gl.constexpr, T: gl.constexpr, L3: gl.constexpr, LR: gl.constexpr,
                    STAGES: gl.constexpr, LC: gl.constexpr):
        """Gradients of :func:`_fwd_kernel` from its chunk-start states; grid (batch, cdiv(D, BD)), chunks last
        first. du, dΔ (channel mode) are stored; dB, dC, dΔ (state/scalar) as per-program partials (batch, blocks,
        ...); dA (batch, D, N) and dD (batch, D) per batch element. STAGES as in :func:`_fwd_kernel` (u, Δ, B, C and
        dy through the ring, the chunks in the backward's order)."""
        LH: gl.constexpr = gl.SliceLayout(2, L3)
        LDT: gl.constexpr = gl.SliceLayout(1, L3)
        pid_b = gl.program_id(0)
        pid_d = gl.program_id(1)
        grp = (pid_d * BD) // CPG
        part = pid_b * gl.num_programs(1) + pid_d
        d_h, n_h, d_t, j_d, n_t, j_n, md_h, m_dn, md_t, mn_t = _indices(pid_d, D, N, BD, BN, T, L3)
        a_off = d_h[:, None] * N + n_h[None, :]
        aa = gl.load(Ar + a_off, mask=m_dn, other=0.0)
        a2 = aa * 1.4426950408889634
        j3 = j_n[None, :][None, :, :]
        LD: gl.constexpr = gl.SliceLayout(1, LDT)
        LRNT: gl.constexpr = gl.SliceLayout(0, LR)
        n_r = gl.arange(0, BN, layout=gl.SliceLayout(1, LRNT))
        j_r = gl.arange(0, T, layout=gl.SliceLayout(0, LRNT))
        if HAS_D:
            dskip = gl.load(Dv + d_t, mask=md_t, other=0.0)[:, None]
            g_d = gl.zeros((BD,), gl.float32, gl.SliceLayout(1, LDT))
        if HAS_DH:
            kap = gl.load(dh + pid_b * D * N + a_off, mask=m_dn, other=0.0)
        else:
            kap = gl.zeros((BD, BN), gl.float32, LH)
        g_a = gl.zeros((BD, BN), gl.float32, LH)
        rows = pid_b * D * L + d_t[:, None] * L
        bc_rows = (pid_b * G + grp) * N * L + n_t[:, None] * L
        ck_off = d_h[:, None] * BN + n_h[None, :]
        if STAGES > 1:
            u_s, dl_s, b_s, c_s = _ring(BD, BN, T, STAGES, DELTA_MODE)
            g_s = gl.allocate_shared_memory(gl.float32, [STAGES, BD, T], gl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
            for k in gl.static_range(STAGES - 1):
                _copy_chunk(u_s, dl_s, b_s, c_s, k, u, dlt, Bp, Cp, n_chunks - 1 - k, pid_b, pid_d, grp, D, N, L,
                            G, BD, BN, T, DELTA_MODE, LC)
                _copy_rows(g_s, k, dy, n_chunks - 1 - k, pid_b, pid_d, D, L, BD, T, LC)
                async_copy.commit_group()
        for i in range(n_chunks):
            c = n_chunks - 1 - i
            if STAGES > 1:
                t_d, m_dt, uu, dl3, raw, bb, cc, coef = _chunk_from_ring(
                    u_s, dl_s, b_s, c_s, i % STAGES, c, d_t, md_t, j_d, n_t, mn_t, j_n, L, T,
                    DELTA_MODE, SOFTPLUS, INPUT_DELTA, L3, STAGES)
                g = g_s.index(i % STAGES).load(LDT)
                nxt = i + STAGES - 1
                _copy_chunk(u_s, dl_s, b_s, c_s, nxt % STAGES, u, dlt, Bp, Cp, n_chunks - 1 - nxt, pid_b, pid_d,
                            grp, D, N, L, G, BD, BN, T, DELTA_MODE, LC)
                _copy_rows(g_s, nxt % STAGES, dy, n_chunks - 1 - nxt, pid_b, pid_d, D, L, BD, T, LC)
                async_copy.commit_group()
            else:
                t_d, m_dt, uu, dl3, raw, bb, cc, coef = _chunk_inputs(
                    u, dlt, Bp, Cp, c, rows, bc_rows, pid_b, grp, d_t, md_t, j_d, n_t, mn_t, j_n, D, N, L, G,
                    T, DELTA_MODE, SOFTPLUS, INPUT_DELTA)
                g = gl.load(dy + rows + t_d[None, :], mask=m_dt, other=0.0)
            h0 = gl.load(ck + (pid_b * n_chunks + c) * D * BN + ck_off, mask=md_h[:, None], other=0.0)
            # h_t rebuilt from the chunk's start, step by step inside the thread (a_t kept for the adjoint)
            h = h0
            at = gl.zeros((BD, BN, T), gl.float32, L3)
            hs = gl.zeros((BD, BN, T), gl.float32, L3)
            for k in gl.static_range(T):
                ak = gl.exp2(_at(dl3, j3, k) * a2)
                h = ak * h + _at(coef, j3, k) * _at(bb, j3, k)
                at = gl.where(j3 == k, ak[:, :, None], at)
                hs = gl.where(j3 == k, h[:, :, None], hs)
            # adjoint, last step first: λ_t = g_t·C_t + κ_{t+1}, κ_t = a_t·λ_t; the gradients of step t with it
            g3 = g[:, None, :]
            lam = gl.zeros((BD, BN, T), gl.float32, L3)
            gu = gl.zeros((BD, T), gl.float32, LDT)
            if DELTA_MODE == 0:
                gdl = gl.zeros((BD, T), gl.float32, LDT)
            else:
                dterm = gl.zeros((BD, BN, T), gl.float32, L3)
            for r in gl.static_range(T - 1, -1, -1):
                ak = _at(at, j3, r)
                lk = _at(g3, j3, r) * _at(cc, j3, r) + kap
                kap = ak * lk
                lam = gl.where(j3 == r, lk[:, :, None], lam)
                if r > 0:
                    hm = _at(hs, j3, r - 1)
                else:
                    hm = h0
                z = ak * hm * lk                 # ∂loss/∂a_t · a_t
                sk = _at(bb, j3, r) * lk         # ∂loss/∂coef_t
                dlk = _at(dl3, j3, r)
                g_a += dlk * z
                dt = aa * z
                if INPUT_DELTA:
                    dt += _at(uu[:, None, :], j3, r) * sk
                    guk = gl.sum(dlk * sk, axis=1)
                else:
                    guk = gl.sum(sk, axis=1)
                gu = gl.where(j_d[None, :] == r, gl.convert_layout(guk, LD, assert_trivial=True)[:, None], gu)
                if DELTA_MODE == 0:
                    gdl = gl.where(j_d[None, :] == r,
                                   gl.convert_layout(gl.sum(dt, axis=1), LD, assert_trivial=True)[:, None], gdl)
                else:
                    dterm = gl.where(j3 == r, dt[:, :, None], dterm)
            if HAS_D:
                gu += dskip * g
                g_d += gl.sum(g * uu, axis=1)
            gl.store(du + rows + t_d[None, :], gu, mask=m_dt)
            t_r = c * T + j_r
            part_off = part * N * L + n_r[:, None] * L + t_r[None, :]
            m_r = (n_r < N)[:, None] & (t_r < L)[None, :]
            if DELTA_MODE == 0:
                if SOFTPLUS:
                    gdl *= _sigmoid(raw)
                gl.store(ddlt + rows + t_d[None, :], gdl, mask=m_dt)
            elif DELTA_MODE == 1:
                gdl = _sum_channels(dterm, LR)
                if SOFTPLUS:
                    gdl *= _sigmoid(gl.convert_layout(raw, LRNT))
                gl.store(ddlt + part_off, gdl, mask=m_r)
            else:
                gdl = gl.sum(_sum_channels(dterm, LR), axis=0)
                if SOFTPLUS:
                    gdl *= _sigmoid(gl.convert_layout(raw, gl.SliceLayout(0, LRNT)))
                gl.store(ddlt + part * L + t_r, gdl, mask=t_r < L)
            gl.store(dB + part_off, _sum_channels(coef * lam, LR), mask=m_r)
            gl.store(dC + part_off, _sum_channels(g3 * hs, LR), mask=m_r)
        if STAGES > 1:
            async_copy.wait_group(0)
        gl.store(dA + pid_b * D * N + a_off, g_a, mask=m_dn)
        if HAS_D:
            gl.store(dD + pid_b * D + d_t, g_d, mask=md_t)


#: The chunk length T (the backward's checkpoint interval, so shared by both kernels) and, per kernel, (NPT, W[, S]):
#: states per thread, warps per program and the input ring's stages (1: no ring). A thread holds NPT·T elements per
#: tile; a channel's states span TPN = BN/NPT lanes and a program BD = (32/TPN)·W channels. Measured on an H100 at
#: (32, 1024, 16, 4096) (benchmarks/results/scan-h100.md): forward (8, 2) 1.68 ms against (4, 4) 2.88 ms;
#: backward (4, 2) 5.44 ms against (2, 4) 9.01 ms. The forward's ring, measured on an H200
#: (benchmarks/results/h200-2026-12-06/): at that size S = 1, 2, 3, 4 took 1.68, 1.30, 1.15, 1.13 ms (S = 3 kept,
#: within 2% of S = 4 in three quarters of the shared memory); at (16, 64, 32, 1024) 0.171 against 0.112 ms; but
#: at the trainer's (16, 9216, 32, 100, G = 64) 0.631 against 0.755 ms, the ring's S − 1 chunks of prologue being
#: a large share of 13 chunks. So the ring is used from RING_MIN_LENGTH steps on (slower measured at L = 100, faster
#: from 1024; at 128 the scan is host-bound; not swept finer). The backward's gained nothing (5.24 ms at S = 1, 5.37
#: at S = 2 and 3).
CHUNK = 8
RING_MIN_LENGTH = 256
CONFIGS = {
    "fwd": {1: (1, 2, 1), 2: (2, 2, 1), 4: (4, 2, 1), 8: (8, 2, 3), 16: (8, 2, 3), 32: (8, 2, 3), 64: (8, 2, 3)},
    "bwd": {1: (1, 2, 1), 2: (2, 2, 1), 4: (4, 2, 1), 8: (4, 2, 1), 16: (4, 2, 1), 32: (4, 2, 1), 64: (4, 2, 1)},
}


def forward_config(nstate: int, length: int) -> tuple:
    """The forward's default (NPT, T, W, S) for N states over L steps: :data:`CONFIGS`, without the input ring
    (S = 1) below :data:`RING_MIN_LENGTH` steps."""
    npt, warps, stages = CONFIGS["fwd"][min(_pow2(nstate), 64)]
    return npt, CHUNK, warps, stages if length >= RING_MIN_LENGTH else 1


@functools.lru_cache(maxsize=None)
def plan(dim: int, nstate: int, groups: int, per_group: int, kind: str, config=None):
    """(BD, BN, T, num_warps, tile layout, channel-sum layout, stages, copy layout) of a launch, or None when this
    path cannot take the shape: a channel block must lie in one group (BD divides a group's channels; fewer warps
    are tried first). ``config`` = (NPT, T, W[, S]) overrides :data:`CONFIGS`. Cached: a launch's host work is
    what small scans cost."""
    if not AVAILABLE:
        return None
    bn = _pow2(nstate)
    if config is None:
        npt, warps, *stages = CONFIGS[kind][min(bn, 64)]
        t = CHUNK
    else:
        npt, t, warps, *stages = config
    stages = stages[0] if stages else 1
    npt = min(max(npt, bn // 32), bn)
    tpn = bn // npt
    tpd = 32 // tpn
    while groups > 1 and per_group % (tpd * warps):
        if warps == 1:
            return None
        warps //= 2
    layout = gl.BlockedLayout([1, npt, t], [tpd, tpn, 1], [warps, 1, 1], [2, 1, 0])
    # the channel sums: every thread holds all BD channels of some (state, step) positions
    tt = min(t, 32)
    tn = 32 // tt
    wn = max(1, min(warps, bn // tn))
    reduce = gl.BlockedLayout([tpd * warps, 1, 1], [1, tn, tt], [1, wn, warps // wn], [2, 1, 0])
    # the ring's copies of (rows, T) tiles: 16-byte segments of a row per thread
    vec = min(t, 4)
    lanes_t = min(t // vec, 32)
    copy = gl.BlockedLayout([1, vec], [32 // lanes_t, lanes_t], [warps, 1], [1, 0])
    return tpd * warps, bn, t, warps, layout, reduce, stages, copy


def supported(u, delta, A, B, C, D) -> bool:
    """Whether the Gluon kernels take this scan: CUDA, real float32 tensors (after promotion), Gluon importable."""
    if not AVAILABLE or not u.is_cuda:
        return False
    tensors = [x for x in (u, delta, A, B, C, D) if x is not None]
    return all(x.dtype in (torch.float32, torch.float16, torch.bfloat16) for x in tensors)


def scan_fwd(u, delta, A, B, C, D=None, *, delta_mode="channel", input_delta=True, delta_softplus=False,
             return_last_state=False, save_ckpt=False, config=None):
    """As :func:`kernels.triton_scan.scan_fwd` for real float32 scans on CUDA; returns (y, h_L, ckpt) with
    ckpt = (states, None, T), or None when :func:`plan` refuses the shape."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    groups, per_group = _groups(B, dim)
    p = plan(dim, nstate, groups, per_group, "fwd", config or forward_config(nstate, length))
    if p is None or (save_ckpt and plan(dim, nstate, groups, per_group, "bwd") is None):
        return None
    bd, bn, t, warps, layout, _, stages, copy = p
    n_chunks = triton.cdiv(length, t)
    f32 = torch.float32
    u_ = u.to(f32).contiguous()
    y = _alloc((batch, dim, length), u_)
    h_last = _alloc((batch, dim, nstate), u_) if return_last_state else None
    ck = _alloc((batch, n_chunks, dim, bn), u_) if save_ckpt else None
    _fwd_kernel[(batch, triton.cdiv(dim, bd))](
        u_, delta.to(f32).contiguous(), A.to(f32).contiguous(), B.to(f32).contiguous(), C.to(f32).contiguous(),
        D.to(f32).contiguous() if D is not None else None, y, h_last, ck,
        dim, nstate, length, groups, per_group, n_chunks,
        DELTA_MODE=DELTA_MODE_ID[delta_mode], INPUT_DELTA=bool(input_delta), SOFTPLUS=bool(delta_softplus),
        HAS_D=D is not None, SAVE_CKPT=bool(save_ckpt), SAVE_LAST=bool(return_last_state),
        BD=bd, BN=bn, T=t, L3=layout, STAGES=stages, LC=copy, num_warps=warps)
    out_dtype = torch.promote_types(u.dtype, delta.dtype)
    return y.to(out_dtype), h_last, ((ck, None, t) if save_ckpt else None)


def scan_bwd(u, delta, A, B, C, D, dy, dh_last, ckpt, *, delta_mode="channel", input_delta=True,
             delta_softplus=False, config=None):
    """As :func:`kernels.triton_scan.scan_bwd` on the checkpoints of :func:`scan_fwd` (``config`` = (NPT, W[, S]))."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    groups, per_group = _groups(B, dim)
    grouped = B.dim() == 4
    ck, _, t = ckpt
    npt, warps, *stages = config or CONFIGS["bwd"][min(_pow2(nstate), 64)]
    bd, bn, t, warps, layout, reduce, stages, copy = plan(dim, nstate, groups, per_group, "bwd",
                                                          (npt, t, warps, *stages))
    n_chunks = triton.cdiv(length, t)
    f32 = torch.float32
    u_ = u.to(f32).contiguous()
    dl_ = delta.to(f32).contiguous()
    n_blocks = triton.cdiv(dim, bd)
    du = _alloc((batch, dim, length), u_)
    if delta_mode == "channel":
        ddl = _alloc(dl_.shape, u_)
    else:
        ddl = _alloc((batch, n_blocks) + tuple(dl_.shape[2 if grouped else 1:]), u_)
    dA = _alloc((batch, dim, nstate), u_)
    dB = _alloc((batch, n_blocks, nstate, length), u_)
    dC = _alloc((batch, n_blocks, nstate, length), u_)
    dD = _alloc((batch, dim), u_) if D is not None else None
    _bwd_kernel[(batch, n_blocks)](
        u_, dl_, A.to(f32).contiguous(), B.to(f32).contiguous(), C.to(f32).contiguous(),
        D.to(f32).contiguous() if D is not None else None, dy.to(f32).contiguous(),
        dh_last.to(f32).contiguous() if dh_last is not None else None, ck,
        du, ddl, dA, dB, dC, dD, dim, nstate, length, groups, per_group, n_chunks,
        DELTA_MODE=DELTA_MODE_ID[delta_mode], INPUT_DELTA=bool(input_delta), SOFTPLUS=bool(delta_softplus),
        HAS_D=D is not None, HAS_DH=dh_last is not None, BD=bd, BN=bn, T=t, L3=layout, LR=reduce, STAGES=stages,
        LC=copy, num_warps=warps)
    if delta_mode != "channel":
        ddl = _sum_blocks(ddl, groups, grouped)
    return (du.to(u.dtype), ddl.to(delta.dtype), dA.sum(0).to(A.dtype), _sum_blocks(dB, groups, grouped).to(B.dtype),
            _sum_blocks(dC, groups, grouped).to(C.dtype), dD.sum(0).to(D.dtype) if D is not None else None)
