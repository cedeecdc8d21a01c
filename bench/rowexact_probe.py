"""Probe: what a verify kernel that reads each weight row once for k rows costs on this CPU (now in the engine).

The engine's verify pass must reproduce single decode steps bit for bit, so before lsp_copilot/engine/rowkernel.py
(which grew out of this probe) it ran MKL's small-row kernels, which re-read the weights for every row group
(docs/benchmarks.md, "Where a decode step's time goes"). This probe times a plain numba kernel in which row r's
dot products run the same code whatever k is (so rows are bit-identical across k by construction) against
`torch.nn.functional.linear`, on the shapes of the embedded target's projections (10 layers + LM head), one thread.
Run: `python bench/rowexact_probe.py` (numba is a dependency of lsp-copilot).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from numba import njit, set_num_threads


@njit(fastmath=True, boundscheck=False)
def _dot(x: np.ndarray, w: np.ndarray) -> np.float32:
    acc = np.float32(0.0)
    for i in range(x.shape[0]):
        acc += x[i] * w[i]
    return acc


@njit(fastmath=True, boundscheck=False)
def matmul_rows(x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """out[k, n] = x[k, d] @ weight[n, d].T; each weight row is loaded once for all k rows (it stays in L1), and
    out[r, j] comes from the same `_dot` code for every r and k: bit-identical rows across k."""
    for j in range(weight.shape[0]):
        wj = weight[j]
        for r in range(x.shape[0]):
            out[r, j] = _dot(x[r], wj)


@njit(fastmath=True, boundscheck=False)
def matmul_blocks4(x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """The same product in blocks of 4 rows (callers pad k to a multiple of 4, so every row always runs this code:
    bit-identical rows across k); one weight element feeds four accumulators, so the loop is no longer bound by
    loads."""
    d = x.shape[1]
    for j in range(weight.shape[0]):
        wj = weight[j]
        for r in range(0, x.shape[0], 4):
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
            for i in range(d):
                w = wj[i]
                a0 += x[r, i] * w
                a1 += x[r + 1, i] * w
                a2 += x[r + 2, i] * w
                a3 += x[r + 3, i] * w
            out[r, j] = a0
            out[r + 1, j] = a1
            out[r + 2, j] = a2
            out[r + 3, j] = a3


def _ms(fn: Callable[[], object], repeats: int = 50) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    torch.set_num_threads(1)
    set_num_threads(1)
    rng = np.random.default_rng(0)
    # (out, in) of wqkv, wo, gate+up, down for each of the 10 layers, then the LM head
    shapes = [(640, 384), (384, 384), (2304, 384), (384, 1152)] * 10 + [(8196, 384)]
    weights = [(rng.standard_normal((o, i)) / 20).astype(np.float32) for o, i in shapes]
    torch_weights = [torch.from_numpy(w) for w in weights]
    single: np.ndarray | None = None
    for k in (1, 2, 4, 8):
        xs = [rng.standard_normal((k, w.shape[1])).astype(np.float32) for w in weights]
        if single is None:
            single = xs[0][:1].copy()
        xs[0][0] = single[0]
        outs = [np.empty((k, w.shape[0]), np.float32) for w in weights]
        t_rows = _ms(lambda xs=xs, outs=outs: [matmul_rows(x, w, o) for x, w, o in zip(xs, weights, outs,
                                                                                       strict=True)])
        xts = [torch.from_numpy(x) for x in xs]
        t_mkl = _ms(lambda xts=xts: [torch.nn.functional.linear(x, w) for x, w in zip(xts, torch_weights,
                                                                                    strict=True)])
        one = np.empty((1, weights[0].shape[0]), np.float32)
        matmul_rows(single, weights[0], one)
        exact = np.array_equal(one[0], outs[0][0])
        blocked = ""
        if k % 4 == 0:
            t_blocks = _ms(lambda xs=xs, outs=outs: [matmul_blocks4(x, w, o) for x, w, o in zip(xs, weights, outs,
                                                                                               strict=True)])
            padded = np.zeros((4, single.shape[1]), np.float32)
            padded[0] = single[0]
            one4 = np.empty((4, weights[0].shape[0]), np.float32)
            matmul_blocks4(padded, weights[0], one4)
            blocked = (f"; blocks of 4: {t_blocks:.2f} ms, row 0 bit-identical to a padded 1-row call: "
                       f"{np.array_equal(one4[0], outs[0][0])}")
        print(f"k={k}: one-read kernel {t_rows:.2f} ms, torch linear {t_mkl:.2f} ms for one forward's products; "
              f"row 0 bit-identical to the 1-row call: {exact}{blocked}")


if __name__ == "__main__":
    main()
