"""Fast CPU belief-propagation decoder for Sionna's 5G NR LDPC codes, compiled with numba.

:class:`NumbaLDPC5GDecoder` is a drop-in replacement, on a CPU, for
``sionna.phy.fec.ldpc.LDPC5GDecoder(encoder, hard_out=True, return_infobits=True)``: it takes the same channel
logits ``[..., n]`` (``log p(b=1)/p(b=0)``, Sionna's sign convention, interleaved as the encoder sent them) and
returns the same hard information bits ``[..., k]``. It decodes exactly the graph that Sionna's decoder builds
from the encoder: the pruned parity-check matrix (punctured degree-1 nodes removed), the first ``2 z`` systematic
bits punctured (LLR 0), the filler (shortening) bits known to be 0 (LLR ``+llr_max``), the rest placed by the
inverse of the encoder's output interleaver. Its numerics follow Sionna's flooding schedule: input LLRs, every
message and the a-posteriori LLRs are clipped to ``+-llr_max`` (20), the exact boxplus uses Sionna's clamping of
``phi(x) = -log tanh(x/2)`` to ``[8.5e-8, 16.635532]``, and a bit is decided 1 when its LLR is ``<= 0``.

Two things differ from Sionna, by design:

* **early stop**: a codeword stops iterating once its hard decisions satisfy every parity check (Sionna runs
  ``num_iter`` iterations for the whole batch). At that point the decisions are a codeword; later iterations
  almost never leave it, so block error rates agree (measured: ``benchmarks/ldpc_decoders.py``);
* arithmetic in float64 (Sionna: float32), so soft values differ in the last digits and a decoding that is on
  the edge of converging can end differently; the tests bound how often.

Check-node rules (``cn_update``): ``boxplus-phi`` and ``boxplus`` (the same exact sum-product; Sionna computes it
two ways), ``minsum``, ``offset-minsum`` (offset 0.5, as Sionna) and ``normalized-minsum`` (min-sum scaled by
:data:`NMS_SCALE`; Sionna has it as ``minsum`` with a check-to-variable callback, see ``links.modem``).
Exact boxplus needs ``tanh`` and ``log`` per edge and iteration; libm's do not vectorise, so this module has its
own branch-free float64 versions (relative error below 1e-14, far below Sionna's float32 arithmetic).

The compiled kernel is cached on disk (numba ``cache=True``, in ``__pycache__`` beside this file or in
``NUMBA_CACHE_DIR``): the first call in a fresh environment compiles it (a few seconds), later processes load it.
Codewords are independent, so a call is split over ``threads`` worker threads (the kernel releases the GIL) and
the result does not depend on the number of threads.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.sparse as sp
import torch

#: check-node rules the numba decoder implements, and their kernel codes
CN_RULES = {"boxplus-phi": 0, "boxplus": 0, "minsum": 1, "offset-minsum": 2, "normalized-minsum": 3}
#: offset of Sionna's offset-corrected min-sum
OMS_OFFSET = 0.5
#: scale of the normalised min-sum (a common choice for 5G base graph 2 at rate 1/2; see benchmarks/NOTES.md)
NMS_SCALE = 0.75

# Sionna's clamping of phi's argument in float32 (cn_update_phi), mapped to the tanh domain:
# |x| -> [PHI_MIN, PHI_MAX] on the way in, extrinsic product of tanh(|x|/2) -> [exp(-PHI_MAX), exp(-PHI_MIN)]
PHI_MIN, PHI_MAX = 8.5e-8, 16.635532
_PROD_LO, _PROD_HI = math.exp(-PHI_MAX), math.exp(-PHI_MIN)
_RATIO_LO, _RATIO_HI = (1 + _PROD_LO) / (1 - _PROD_LO), (1 + _PROD_HI) / (1 - _PROD_HI)
#: codewords decoded side by side in SIMD lanes (8 float64: two AVX2 registers; LLVM emits 256-bit vectors here)
LANES = 8


LOG2E = 1.4426950408889634
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 = LN2_HI + LN2_LO (fdlibm)
LN2, SQRT2 = math.log(2.0), math.sqrt(2.0)


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _tanh_half(a):  # pragma: no cover - compiled
    """``tanh(a / 2)`` for ``0 <= a < 700``, float64, relative error below 1e-14; branch free so that loops over
    lanes vectorise (libm's tanh does not). ``exp(-a) = 2^-n (1 + expm1(-r))`` with ``n = round(a / ln 2)``,
    ``|r| <= ln(2) / 2`` and expm1 by its Taylor series to degree 12."""
    n = np.int64(a * LOG2E + 0.5)
    x = n * LN2_LO - (a - n * LN2_HI)  # -r, |r| <= ln(2) / 2
    em = x * (1.0 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x * (1 / 720 + x * (1 / 5040 + x * (
        1 / 40320 + x * (1 / 362880 + x * (1 / 3628800 + x * (1 / 39916800 + x * (1 / 479001600))))))))))))
    s = np.int64((1023 - n) << 52).view(np.float64)  # 2^-n
    return ((1.0 - s) - s * em) / (1.0 + s + s * em)


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _log(q):  # pragma: no cover - compiled
    """Natural logarithm of a positive normal float64, relative error below 1e-15, branch free: ``q = m 2^e``
    with ``m`` in ``[sqrt(1/2), sqrt(2))``, ``log m = 2 atanh((m - 1) / (m + 1))`` by its series."""
    bits = np.float64(q).view(np.int64)
    ex = (bits >> 52) - 1023
    m = np.int64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
    big = m > SQRT2
    m = m * 0.5 if big else m
    ex = ex + 1 if big else ex
    u = (m - 1.0) / (m + 1.0)
    u2 = u * u
    series = u * (2.0 + u2 * (2 / 3 + u2 * (2 / 5 + u2 * (2 / 7 + u2 * (2 / 9 + u2 * (2 / 11 + u2 * (2 / 13 + u2 * (
        2 / 15 + u2 * (2 / 17)))))))))
    return ex * LN2 + series


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _load(lane, cw, llr, channel_vn, filler_lo, filler_hi, edge_vn, llr_max, lv, v2c):  # pragma: no cover
    """Put codeword ``cw`` of ``llr [B, n]`` (logits) into ``lane``: channel LLRs per variable node (log p0/p1,
    clipped), known fillers, and the first variable-to-check messages."""
    L = LANES
    for v in range(lv.shape[0] // L):
        lv[v * L + lane] = 0.0
    for j in range(channel_vn.shape[0]):
        x = -np.float64(llr[cw, j])
        lv[channel_vn[j] * L + lane] = min(max(x, -llr_max), llr_max)
    for v in range(filler_lo, filler_hi):
        lv[v * L + lane] = llr_max
    for e in range(edge_vn.shape[0]):
        v2c[e * L + lane] = lv[edge_vn[e] * L + lane]


# The check-node updates are separate functions, as LLVM vectorises their loops only there. The transcendental and
# output passes are single loops over (edge, lane) with no other store; the products, signs and minima per lane
# are cheap passes.
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _check_boxplus(x_c, t_c, out_c, acc, degree, llr_max):  # pragma: no cover - compiled
    """Exact boxplus at one check node of ``degree`` edges: ``x_c``, ``out_c`` ``[degree * LANES]`` variable-to-
    check in, check-to-variable out (LLRs); ``t_c`` scratch of the same size, ``acc`` ``[LANES]``.

    With ``t = sign(x) tanh(|x| / 2)`` (sign(0) = +1, ``|x|`` clamped as Sionna's phi), the outgoing message
    on edge ``j`` is ``2 atanh(prod_{i != j} t_i) = +-log((1 + p) / (1 - p))`` with ``p = |prod_i t_i / t_j|``
    (clamped as Sionna clamps phi's argument)."""
    L = LANES
    for j in range(degree * L):
        x = x_c[j]
        t = _tanh_half(min(max(abs(x), PHI_MIN), PHI_MAX))
        t_c[j] = -t if x < 0.0 else t
    for i in range(L):
        acc[i] = 1.0
    for j in range(degree * L):
        acc[j & (L - 1)] *= t_c[j]
    for j in range(degree * L):  # broadcast the products first: reading acc in the next loop would not vectorise
        out_c[j] = acc[j & (L - 1)]
    for j in range(degree * L):
        t, product = t_c[j], out_c[j]
        # (1 + p) / (1 - p) with p = |product / t|, in one division
        ratio = min(max((abs(t) + abs(product)) / (abs(t) - abs(product)), _RATIO_LO), _RATIO_HI)
        magnitude = min(_log(ratio), llr_max)
        out_c[j] = -magnitude if (product < 0.0) != (t < 0.0) else magnitude


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _check_minsum(x_c, t_c, u_c, out_c, first, second, sign, degree, rule, llr_max):  # pragma: no cover - compiled
    """Min-sum at one check node (``rule`` 1 plain, 2 offset, 3 normalised): ``x_c``, ``out_c`` as in
    :func:`_check_boxplus`; ``t_c``, ``u_c`` scratch of their size; ``first``, ``second``, ``sign`` ``[LANES]``.
    The outgoing magnitude is the smallest incoming one of the other edges: ``second`` on the edge that holds the
    minimum (ties: ``second == first``), ``first`` elsewhere."""
    L = LANES
    for i in range(L):
        first[i] = np.inf
        second[i] = np.inf
        sign[i] = 1.0
    for j in range(degree * L):
        i = j & (L - 1)
        x = x_c[j]
        a = abs(x)
        second[i] = min(second[i], max(first[i], a))
        first[i] = min(first[i], a)
        sign[i] = -sign[i] if x < 0.0 else sign[i]
    for j in range(degree * L):  # broadcast per-lane values (see _check_boxplus)
        i = j & (L - 1)
        t_c[j] = first[i]
        u_c[j] = second[i]
        out_c[j] = sign[i]
    for j in range(degree * L):
        x = x_c[j]
        magnitude = u_c[j] if abs(x) == t_c[j] else t_c[j]
        if rule == 2:
            magnitude = max(magnitude - OMS_OFFSET, 0.0)
        elif rule == 3:
            magnitude *= NMS_SCALE
        magnitude = min(magnitude, llr_max)
        out_c[j] = -out_c[j] * magnitude if x < 0.0 else out_c[j] * magnitude


# error_model="numpy": no ZeroDivisionError checks, which would keep the lane loops from vectorising. Lane loops
# index slices (``[node * L : node * L + L]``) with ``range`` counters, so that no negative-index wrap-around
# check is needed either.
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _decode_batch(llr, channel_vn, filler_lo, filler_hi, num_vn, cn_ptr, edge_vn, vn_ptr, vn_edge, k, num_iter,
                  rule, llr_max, out_bits, out_iter):  # pragma: no cover - compiled
    """Decode ``llr [B, n]`` (logits, channel order) into ``out_bits [B, k]`` (uint8) and the iterations each
    codeword used, ``out_iter [B]`` (int32).

    Graph: edges grouped by check node (``cn_ptr [C+1]``, ``edge_vn [E]``) and, per variable node, its edge ids
    (``vn_ptr [V+1]``, ``vn_edge [E]``). :data:`LANES` codewords are decoded side by side (every message array is
    ``[node or edge, lane]``, flattened, so that the loops over lanes compile to SIMD instructions); a lane whose
    codeword satisfies every check, or has run ``num_iter`` iterations, is written out and refilled with the next
    codeword, so early stop saves work per codeword. Lanes do not interact: a codeword's result does not depend on
    its lane or its companions.
    """
    L = LANES
    batch = llr.shape[0]
    num_cn = cn_ptr.shape[0] - 1
    num_edges = edge_vn.shape[0]
    lv = np.zeros(num_vn * L)           # channel LLR per variable node
    v2c = np.zeros(num_edges * L)
    c2v = np.zeros(num_edges * L)
    tv = np.zeros(num_edges * L)        # scratch of the check-node updates
    uv = np.zeros(num_edges * L)
    hard = np.zeros(num_vn * L, np.uint8)
    acc = np.zeros(L)                   # product of tanh (boxplus) or first minimum (min-sum)
    acc2 = np.zeros(L)                  # second minimum
    sign = np.zeros(L)
    total = np.zeros(L)
    parity = np.zeros(L, np.uint8)
    unsat = np.zeros(L, np.uint8)
    lane_cw = np.full(L, -1, np.int64)
    lane_it = np.zeros(L, np.int64)
    next_cw = 0
    active = 0
    for lane in range(min(L, batch)):
        _load(lane, lane, llr, channel_vn, filler_lo, filler_hi, edge_vn, llr_max, lv, v2c)
        lane_cw[lane] = lane
        next_cw += 1
        active += 1
    while active > 0:
        # check-node update
        for c in range(num_cn):
            lo, hi = cn_ptr[c] * L, cn_ptr[c + 1] * L
            x_c, t_c, u_c, out_c = v2c[lo:hi], tv[lo:hi], uv[lo:hi], c2v[lo:hi]
            degree = cn_ptr[c + 1] - cn_ptr[c]
            if rule == 0:
                _check_boxplus(x_c, t_c, out_c, acc, degree, llr_max)
            else:
                _check_minsum(x_c, t_c, u_c, out_c, acc, acc2, sign, degree, rule, llr_max)
        # variable-node update and hard decisions (bit 1 where the a-posteriori LLR is <= 0, as Sionna)
        for v in range(num_vn):
            lv_v = lv[v * L:v * L + L]
            for i in range(L):
                total[i] = lv_v[i]
            for j in range(vn_ptr[v], vn_ptr[v + 1]):
                e = vn_edge[j] * L
                msg = c2v[e:e + L]
                for i in range(L):
                    total[i] += msg[i]
            for j in range(vn_ptr[v], vn_ptr[v + 1]):
                e = vn_edge[j] * L
                msg, out = c2v[e:e + L], v2c[e:e + L]
                for i in range(L):
                    out[i] = min(max(total[i] - msg[i], -llr_max), llr_max)
            hard_v = hard[v * L:v * L + L]
            for i in range(L):
                hard_v[i] = 1 if total[i] <= 0.0 else 0
        # syndrome per lane
        for i in range(L):
            unsat[i] = 0
        for c in range(num_cn):
            for i in range(L):
                parity[i] = 0
            for e in range(cn_ptr[c], cn_ptr[c + 1]):
                v = edge_vn[e] * L
                hard_v = hard[v:v + L]
                for i in range(L):
                    parity[i] ^= hard_v[i]
            for i in range(L):
                unsat[i] |= parity[i]
        # finished lanes: write out, refill
        for lane in range(L):
            cw = lane_cw[lane]
            if cw < 0:
                continue
            lane_it[lane] += 1
            if unsat[lane] == 0 or lane_it[lane] >= num_iter:
                out_iter[cw] = lane_it[lane]
                for j in range(k):
                    out_bits[cw, j] = hard[j * L + lane]
                lane_it[lane] = 0
                if next_cw < batch:
                    _load(lane, next_cw, llr, channel_vn, filler_lo, filler_hi, edge_vn, llr_max, lv, v2c)
                    lane_cw[lane] = next_cw
                    next_cw += 1
                else:
                    lane_cw[lane] = -1
                    active -= 1


class NumbaLDPC5GDecoder:
    """Flooding belief propagation with early stop for a Sionna 5G NR LDPC code, on the CPU.

    Args:
        encoder: the ``sionna.phy.fec.ldpc.LDPC5GEncoder`` whose codewords are decoded (its ``num_bits_per_symbol``
            sets the output interleaver that is undone).
        num_iter: maximum belief-propagation iterations per codeword.
        cn_update: check-node rule, one of :data:`CN_RULES`.
        llr_max: clipping of input LLRs and of all messages (Sionna's default 20); the filler bits get ``+llr_max``.
        threads: worker threads a call is split over; ``None``: ``torch.get_num_threads()`` at call time.

    Input:
        llr: ``[..., n]`` float channel logits ``log p(b=1)/p(b=0)`` (a torch tensor on the CPU or a numpy array).

    Output:
        ``[..., k]`` float32 hard information bits in {0, 1}, a torch tensor (numpy in, numpy out).
        ``last_iterations`` holds the iterations each codeword of the last call used, ``[batch]`` int32, with
        ``batch`` the product of the leading dimensions.

    Example::

        encoder = LDPC5GEncoder(512, 1024, num_bits_per_symbol=2)
        decoder = NumbaLDPC5GDecoder(encoder, num_iter=20)
        bits = torch.randint(0, 2, (8, 512)).float()
        assert torch.equal(decoder(20.0 * (2.0 * encoder(bits) - 1.0)), bits)
    """

    def __init__(self, encoder, num_iter: int = 20, cn_update: str = "boxplus-phi", llr_max: float = 20.0,
                 threads: int | None = None):
        if cn_update not in CN_RULES:
            raise ValueError(f"cn_update must be one of {', '.join(CN_RULES)}, not {cn_update!r}")
        self.k, self.n = int(encoder.k), int(encoder.n)
        self.num_iter = int(num_iter)
        self.cn_update = cn_update
        self.llr_max = float(llr_max)
        self.threads = threads
        self.last_iterations = np.zeros(0, np.int32)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_threads = 0
        graph = tanner_graph(encoder)
        self.num_vn = graph["num_vn"]
        self._channel_vn = graph["channel_vn"]
        self._filler = graph["filler"]
        self._cn_ptr, self._edge_vn = graph["cn_ptr"], graph["edge_vn"]
        self._vn_ptr, self._vn_edge = graph["vn_ptr"], graph["vn_edge"]

    def decode_numpy(self, llr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``llr [B, n]`` logits -> hard bits ``[B, k]`` uint8 and iterations used ``[B]`` int32."""
        llr = np.ascontiguousarray(llr, dtype=np.float32)
        batch = llr.shape[0]
        bits = np.empty((batch, self.k), np.uint8)
        iters = np.empty(batch, np.int32)
        threads = max(1, min(self.threads or torch.get_num_threads(), batch))
        parts = np.linspace(0, batch, threads + 1).astype(int)
        rule = CN_RULES[self.cn_update]

        def run(i: int) -> None:
            lo, hi = parts[i], parts[i + 1]
            _decode_batch(llr[lo:hi], self._channel_vn, self._filler[0], self._filler[1], self.num_vn, self._cn_ptr,
                          self._edge_vn, self._vn_ptr, self._vn_edge, self.k, self.num_iter, rule, self.llr_max,
                          bits[lo:hi], iters[lo:hi])

        if threads == 1:
            run(0)
        else:
            if self._pool_threads < threads:
                if self._pool is not None:
                    self._pool.shutdown()
                self._pool, self._pool_threads = ThreadPoolExecutor(threads, thread_name_prefix="ldpc"), threads
            list(self._pool.map(run, range(threads)))
        return bits, iters

    def __call__(self, llr):
        as_numpy = isinstance(llr, np.ndarray)
        array = llr if as_numpy else llr.detach().cpu().numpy()
        if array.shape[-1] != self.n:
            raise ValueError(f"last dimension of the LLRs must be n = {self.n}, not {array.shape[-1]}")
        bits, self.last_iterations = self.decode_numpy(array.reshape(-1, self.n))
        bits = bits.reshape(*array.shape[:-1], self.k).astype(np.float32)
        return bits if as_numpy else torch.from_numpy(bits).to(llr.device)


def tanner_graph(encoder) -> dict:
    """The decoding graph Sionna's ``LDPC5GDecoder(encoder)`` uses, as index arrays.

    Returns a dict: ``num_vn`` (variable nodes of the pruned graph), ``channel_vn [n]`` int32 (the variable node
    each received LLR feeds, in the encoder's output order, interleaver included), ``filler`` ``(lo, hi)`` (the
    variable nodes of the known-zero filler bits), ``cn_ptr [C+1]`` and ``edge_vn [E]`` (edges grouped by check
    node), ``vn_ptr [V+1]`` and ``vn_edge [E]`` (the edge ids of each variable node).
    """
    from sionna.phy.fec.ldpc import LDPC5GDecoder  # the pruning rule is Sionna's: take its graph

    reference = LDPC5GDecoder(encoder, num_iter=1, hard_out=True, device="cpu")
    pcm = sp.csr_matrix(reference.pcm)
    pcm.sum_duplicates()
    pcm.sort_indices()
    num_cn, num_vn = pcm.shape
    k, n, z, k_filler = int(encoder.k), int(encoder.n), int(encoder.z), int(encoder.k_filler)
    # Sionna's rate recovery: [2z punctured (LLR 0) | systematic bits 2z..k | k_filler fillers | parity ...],
    # and the received stream, deinterleaved, fills the systematic and parity positions in order
    position = np.arange(n)
    rm_vn = np.where(position < k - 2 * z, 2 * z + position, 2 * z + position + k_filler)
    if encoder.num_bits_per_symbol is not None:
        out_int_inv = np.asarray(encoder.out_int_inv.cpu(), dtype=np.int64)
        channel_vn = np.empty(n, np.int64)
        channel_vn[out_int_inv] = rm_vn  # rate-matched bit i was received at position out_int_inv[i]
    else:
        channel_vn = rm_vn
    if channel_vn.max() >= num_vn:
        raise ValueError(f"received bits map beyond the decoding graph ({channel_vn.max()} >= {num_vn})")
    # edge id of every nonzero (CN order = csr order); per VN, the ids of its edges
    edge_id = sp.csr_matrix((np.arange(pcm.nnz) + 1, pcm.indices, pcm.indptr), shape=pcm.shape).tocsc()
    edge_id.sort_indices()
    return {
        "num_vn": int(num_vn),
        "channel_vn": channel_vn.astype(np.int32),
        "filler": (int(k), int(k + k_filler)),
        "cn_ptr": pcm.indptr.astype(np.int32),
        "edge_vn": pcm.indices.astype(np.int32),
        "vn_ptr": edge_id.indptr.astype(np.int32),
        "vn_edge": (edge_id.data - 1).astype(np.int32),
        "num_cn": int(num_cn),
    }
