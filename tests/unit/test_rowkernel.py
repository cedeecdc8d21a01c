"""The numba row kernel: rows bit-identical for every row count; lossless speculation with it; fallbacks."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor

from lsp_copilot.engine import Engine, GenerationRequest
from lsp_copilot.engine import engine as engine_module
from lsp_copilot.engine.engine import check_row_exactness
from lsp_copilot.engine.lean import load_row_kernel, row_kernel_works
from lsp_copilot.engine.runners import LeanRunner
from tests.conftest import fim_prompts

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU, FP32 = torch.device("cpu"), torch.float32


# [in, out] shapes: the embedded target's projections, and sizes off every block (d % 4 != 0, columns past a tile)
SHAPES = [(384, 640), (1152, 384), (5, 3), (37, 1030), (64, 513)]


@pytest.mark.parametrize("d, m", SHAPES)
def test_kernel_rows_are_bit_identical_for_every_row_count(d: int, m: int) -> None:
    pytest.importorskip("numba")
    from lsp_copilot.engine.rowkernel import matmul_rows

    gen = torch.Generator().manual_seed(d * m)
    w = torch.randn(d, m, generator=gen) / d ** 0.5
    x = torch.randn(9, d, generator=gen)
    full = matmul_rows(x, w)  # [9, m]
    torch.testing.assert_close(full, torch.mm(x, w), rtol=1e-4, atol=1e-4)
    for k in range(1, 10):  # every row count, at every offset: row r always gets the bits of the 9-row call
        for lo in range(0, 10 - k):
            assert torch.equal(matmul_rows(x[lo:lo + k], w), full[lo:lo + k]), (k, lo)
    # equal rows get equal bits wherever they sit in a row block, and a row alone gets its bits from within a block
    twins = x[:1].repeat(6, 1)
    twins[3:, -1] += 1e-3
    out = matmul_rows(twins, w)
    assert all(torch.equal(out[i], out[0]) for i in range(3))
    assert torch.equal(matmul_rows(twins[3:4], w)[0], out[3])


def test_load_row_kernel_checks_its_results() -> None:
    pytest.importorskip("numba")
    kernel, why = load_row_kernel(CPU, FP32)
    assert kernel is not None and why == ""
    assert row_kernel_works(kernel)
    assert not row_kernel_works(lambda x, w: torch.mm(x, w) * 1.001)  # consistent but wrong
    assert not row_kernel_works(lambda x, w: torch.mm(x, w) + 1e-3 * (x.shape[0] > 1))  # depends on the row count


def test_row_kernel_serves_fp32_cpu_only() -> None:
    for device, dtype in ((torch.device("cuda"), torch.bfloat16), (CPU, torch.float16), (CPU, torch.bfloat16)):
        kernel, why = load_row_kernel(device, dtype)
        assert kernel is None and "fp32" in why


def test_engine_falls_back_when_numba_is_missing(tiny_models: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # `import numba` fails (and the compiled module is not already imported): the MKL classes, still row-exact
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "lsp_copilot.engine.rowkernel", raising=False)
    kernel, why = load_row_kernel(CPU, FP32)
    assert kernel is None and "numba" in why
    with caplog.at_level(logging.WARNING, logger="lsp_copilot.engine.engine"):
        engine = Engine.load(tiny_models[0], device="cpu")
    assert isinstance(engine.target, LeanRunner)
    assert engine.target.model.row_kernel is None and engine.target.model.kernel_rows == 3
    assert engine.exact_speculation and check_row_exactness(engine.target, length=100, width=7)
    assert any("numba" in r.getMessage() for r in caplog.records)


def test_engine_drops_a_row_kernel_that_fails_the_exactness_check(tiny_models: tuple[Path, Path],
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    def row_dependent(x: Tensor, w: Tensor) -> Tensor:  # what a kernel with row-count-dependent bits looks like
        return torch.mm(x, w) * (1.0 + 1e-6 * (x.shape[0] > 1))

    monkeypatch.setattr(engine_module, "load_row_kernel", lambda device, dtype: (row_dependent, ""))
    with caplog.at_level(logging.WARNING, logger="lsp_copilot.engine.engine"):
        engine = Engine.load(tiny_models[0], device="cpu")
    assert isinstance(engine.target, LeanRunner)
    assert engine.target.model.row_kernel is None  # dropped: the MKL classes serve every weight
    assert engine.exact_speculation
    assert any("row-exactness" in r.getMessage() for r in caplog.records)


@pytest.fixture(scope="module")
def embedded_engine(embedded_models: tuple[Path, Path]) -> Engine:
    pytest.importorskip("numba")
    target, draft = embedded_models
    return Engine.load(target, draft, device="cpu")


def test_embedded_model_runs_every_weight_in_the_row_kernel(embedded_engine: Engine) -> None:
    assert isinstance(embedded_engine.target, LeanRunner)
    lean = embedded_engine.target.model
    assert lean.row_kernel is not None and lean.row_kernel_weights == {"wqkv", "wo", "wgu", "wdown", "lm_head"}
    assert embedded_engine.exact_speculation
    assert check_row_exactness(embedded_engine.target, length=200, width=13)


@pytest.mark.parametrize("spec", ["draft", "lookup", "screen", "auto"])
def test_embedded_greedy_speculation_is_the_plain_loop_with_the_row_kernel(embedded_engine: Engine,
                                                                          spec: str) -> None:
    engine = embedded_engine
    drafted = 0
    for i, prompt in enumerate(fim_prompts(8, seed=11)):
        engine.clear_cache()
        plain = "".join(engine.generate(GenerationRequest(prompt, max_new_tokens=32, speculation="off")))
        base = engine.last_result
        screen = plain[: len(plain) // 2] + "xq" if i % 2 else plain  # a stale suggestion on odd prompts
        engine.clear_cache()
        req = GenerationRequest(prompt, max_new_tokens=32, speculation=spec, expected_continuation=screen)
        fast = "".join(engine.generate(req))
        res = engine.last_result
        assert fast == plain, (spec, i)
        assert (res.tokens, res.stop_reason) == (base.tokens, base.stop_reason)
        drafted += sum(res.drafted.values())
    if spec != "auto":  # auto may run no source on these prompts (the cost model decides)
        assert drafted > 0, "the source never proposed anything: the comparison tested nothing"
