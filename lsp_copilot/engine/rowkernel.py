"""Row-exact fp32 matrix products for the lean step path: a numba kernel whose rows do not depend on the row count."""

# Invariant (what lossless speculation needs): for x [n, d] and w [d, m], every output element is
#     out[r, j] = c_d,  c_0 = +0.0,  c_{i+1} = fma(x[r, i], w[i, j], c_i)  for i = 0, 1, ..., d - 1 in this order,
# each step one correctly rounded fused multiply-add (`llvm.fma`, fastmath off: never reassociated, split or
# reordered). Nothing in that chain depends on n, on where row r sits in a row block, on the column tile or on the
# SIMD lane that computes it, so a row's bits do not depend on how many other rows are in the call: a 1-row decode
# step and any k-row verify pass give a row the same bits. The kernels below only choose how many rows share each
# load of a weight (4, 2 or 1: register blocking across rows) and vectorize across columns j, never across i.
#
# Importing this module needs numba and compiles `_matmul` for its one signature (eagerly; numba's disk cache,
# cache=True, makes later imports take ~0.3 s instead of ~2 s): the engine imports it at model load only
# (lean.load_row_kernel), never inside a request. The compiled kernels are module-level numba dispatchers: that is
# the process-wide cache of compiled code (no other state lives here). nogil: the server's other threads run while a
# product does.

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import njit, types
from numba.extending import intrinsic
from torch import Tensor

TILE = 512  # output columns per tile: the out rows of a tile and 4 weight-row chunks stay in L1 while rows reuse them
U = np.uint64  # unsigned indices: numba then skips negative-index wraparound, keeping the loads consecutive


def _type_fma32(typingctx: object, a: object, b: object, c: object) -> tuple[object, object]:
    """Typing and code of `fma32`: float32 arguments, one llvm.fma.f32 call."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context: object, builder: Any, signature: object, args: tuple[object, object, object]) -> object:
        return builder.fma(*args)

    return sig, codegen


fma32: Any = intrinsic(_type_fma32)  # fma32(a, b, c) = a * b + c rounded once; a vector fma once vectorized


# The three row-block kernels: rows r..r+R-1 (R = 4, 2, 1) of the column tile j0..j0+jn-1, over flat C-order views
# xf [n*d], wf [d*m], of [n*m]. Each runs i in steps of 4 (one load and store of out per 4 fmas) and then the d % 4
# remaining i one at a time: the same fma chain for every element in every kernel (see the invariant above).

@njit(cache=True, nogil=True, boundscheck=False)
def _multiply4(xf: np.ndarray, wf: np.ndarray, of: np.ndarray, d: int, m: int, r: int, j0: int, jn: int) -> None:
    o0, o1, o2, o3 = r * m + j0, (r + 1) * m + j0, (r + 2) * m + j0, (r + 3) * m + j0
    x0, x1, x2, x3 = r * d, (r + 1) * d, (r + 2) * d, (r + 3) * d
    for j in range(jn):
        of[U(o0 + j)] = of[U(o1 + j)] = of[U(o2 + j)] = of[U(o3 + j)] = np.float32(0.0)
    for i in range(0, d - d % 4, 4):
        a0, a1, a2, a3 = xf[U(x0 + i)], xf[U(x0 + i + 1)], xf[U(x0 + i + 2)], xf[U(x0 + i + 3)]
        b0, b1, b2, b3 = xf[U(x1 + i)], xf[U(x1 + i + 1)], xf[U(x1 + i + 2)], xf[U(x1 + i + 3)]
        c0, c1, c2, c3 = xf[U(x2 + i)], xf[U(x2 + i + 1)], xf[U(x2 + i + 2)], xf[U(x2 + i + 3)]
        e0, e1, e2, e3 = xf[U(x3 + i)], xf[U(x3 + i + 1)], xf[U(x3 + i + 2)], xf[U(x3 + i + 3)]
        w0 = i * m + j0
        for j in range(jn):
            v0, v1, v2, v3 = wf[U(w0 + j)], wf[U(w0 + m + j)], wf[U(w0 + 2 * m + j)], wf[U(w0 + 3 * m + j)]
            of[U(o0 + j)] = fma32(a3, v3, fma32(a2, v2, fma32(a1, v1, fma32(a0, v0, of[U(o0 + j)]))))
            of[U(o1 + j)] = fma32(b3, v3, fma32(b2, v2, fma32(b1, v1, fma32(b0, v0, of[U(o1 + j)]))))
            of[U(o2 + j)] = fma32(c3, v3, fma32(c2, v2, fma32(c1, v1, fma32(c0, v0, of[U(o2 + j)]))))
            of[U(o3 + j)] = fma32(e3, v3, fma32(e2, v2, fma32(e1, v1, fma32(e0, v0, of[U(o3 + j)]))))
    for i in range(d - d % 4, d):
        a0, b0, c0, e0 = xf[U(x0 + i)], xf[U(x1 + i)], xf[U(x2 + i)], xf[U(x3 + i)]
        w0 = i * m + j0
        for j in range(jn):
            v0 = wf[U(w0 + j)]
            of[U(o0 + j)] = fma32(a0, v0, of[U(o0 + j)])
            of[U(o1 + j)] = fma32(b0, v0, of[U(o1 + j)])
            of[U(o2 + j)] = fma32(c0, v0, of[U(o2 + j)])
            of[U(o3 + j)] = fma32(e0, v0, of[U(o3 + j)])


@njit(cache=True, nogil=True, boundscheck=False)
def _multiply2(xf: np.ndarray, wf: np.ndarray, of: np.ndarray, d: int, m: int, r: int, j0: int, jn: int) -> None:
    o0, o1 = r * m + j0, (r + 1) * m + j0
    x0, x1 = r * d, (r + 1) * d
    for j in range(jn):
        of[U(o0 + j)] = of[U(o1 + j)] = np.float32(0.0)
    for i in range(0, d - d % 4, 4):
        a0, a1, a2, a3 = xf[U(x0 + i)], xf[U(x0 + i + 1)], xf[U(x0 + i + 2)], xf[U(x0 + i + 3)]
        b0, b1, b2, b3 = xf[U(x1 + i)], xf[U(x1 + i + 1)], xf[U(x1 + i + 2)], xf[U(x1 + i + 3)]
        w0 = i * m + j0
        for j in range(jn):
            v0, v1, v2, v3 = wf[U(w0 + j)], wf[U(w0 + m + j)], wf[U(w0 + 2 * m + j)], wf[U(w0 + 3 * m + j)]
            of[U(o0 + j)] = fma32(a3, v3, fma32(a2, v2, fma32(a1, v1, fma32(a0, v0, of[U(o0 + j)]))))
            of[U(o1 + j)] = fma32(b3, v3, fma32(b2, v2, fma32(b1, v1, fma32(b0, v0, of[U(o1 + j)]))))
    for i in range(d - d % 4, d):
        a0, b0 = xf[U(x0 + i)], xf[U(x1 + i)]
        w0 = i * m + j0
        for j in range(jn):
            v0 = wf[U(w0 + j)]
            of[U(o0 + j)] = fma32(a0, v0, of[U(o0 + j)])
            of[U(o1 + j)] = fma32(b0, v0, of[U(o1 + j)])


@njit(cache=True, nogil=True, boundscheck=False)
def _multiply1(xf: np.ndarray, wf: np.ndarray, of: np.ndarray, d: int, m: int, r: int, j0: int, jn: int) -> None:
    o0, x0 = r * m + j0, r * d
    for j in range(jn):
        of[U(o0 + j)] = np.float32(0.0)
    for i in range(0, d - d % 4, 4):
        a0, a1, a2, a3 = xf[U(x0 + i)], xf[U(x0 + i + 1)], xf[U(x0 + i + 2)], xf[U(x0 + i + 3)]
        w0 = i * m + j0
        for j in range(jn):
            v0, v1, v2, v3 = wf[U(w0 + j)], wf[U(w0 + m + j)], wf[U(w0 + 2 * m + j)], wf[U(w0 + 3 * m + j)]
            of[U(o0 + j)] = fma32(a3, v3, fma32(a2, v2, fma32(a1, v1, fma32(a0, v0, of[U(o0 + j)]))))
    for i in range(d - d % 4, d):
        a0 = xf[U(x0 + i)]
        w0 = i * m + j0
        for j in range(jn):
            of[U(o0 + j)] = fma32(a0, wf[U(w0 + j)], of[U(o0 + j)])


@njit("void(float32[:, ::1], float32[:, ::1], float32[:, ::1])", cache=True, nogil=True, boundscheck=False)
def _matmul(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out [n, m] = x [n, d] @ w [d, m] (C-contiguous fp32): column tiles, and in each the rows in blocks of 4, then
    a block of 2, then 1 (n = 7: rows 0-3, 4-5, 6); a tile's weights come from memory once, then from cache."""
    n, d = x.shape
    m = w.shape[1]
    xf, wf, of = x.reshape(-1), w.reshape(-1), out.reshape(-1)
    for j0 in range(0, m, TILE):
        jn = min(TILE, m - j0)
        r = 0
        while n - r >= 4:
            _multiply4(xf, wf, of, d, m, r, j0, jn)
            r += 4
        if n - r >= 2:
            _multiply2(xf, wf, of, d, m, r, j0, jn)
            r += 2
        if n - r == 1:
            _multiply1(xf, wf, of, d, m, r, j0, jn)


def matmul_rows(x: Tensor, w: Tensor) -> Tensor:
    """x [n, d] @ w [d, m] for fp32 CPU tensors, w C-contiguous; row r's bits are the same for every n."""
    n = x.shape[0]
    if n % 4 == 3:  # one zero row more: a block of 4 reads a tile's weights once where 2 + 1 would read them twice
        x = torch.cat([x, x.new_zeros(1, x.shape[1])])
    out = np.empty((x.shape[0], w.shape[1]), np.float32)
    _matmul(x.contiguous().numpy(), w.numpy(), out)
    return torch.from_numpy(out)[:n]
