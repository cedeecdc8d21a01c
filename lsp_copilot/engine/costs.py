"""When the draft model pays: measured forward costs of the target and the draft, and the draft length they favour."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lsp_copilot.engine.runners import Runner


@dataclass(frozen=True)
class CostModel:
    """Seconds of one target forward of r rows (measured at a few r, linear between them) and of one draft step.

    On a GPU extra verify rows are almost free, so long drafts pay; on a CPU the row-exact step path makes each extra
    row cost a fifth to a third of a step, and a draft pays only with high acceptance.
    """

    target_s: tuple[tuple[int, float], ...]  # (rows, seconds), rows ascending, starting at 1
    draft_s: float
    draft_prefill_s: float = 0.0  # seconds per token of the draft catching up on tokens it has not seen (batched)

    def target(self, rows: int) -> float:
        """Seconds of a target forward of `rows` rows (interpolated; extrapolated from the last two points)."""
        pts = self.target_s
        for (r0, s0), (r1, s1) in itertools.pairwise(pts):
            if rows <= r1:
                return s0 + (s1 - s0) * (rows - r0) / (r1 - r0)
        (r0, s0), (r1, s1) = pts[-2], pts[-1]
        return s1 + (s1 - s0) * (rows - r1) / (r1 - r0)

    def catch_up(self, lag: int) -> float:
        """Seconds the draft needs to run `lag` tokens it has not seen yet (a new prompt, another document)."""
        return lag * self.draft_prefill_s

    def best_draft_len(self, acceptance: float, k_max: int, margin: float = 1.05, lag: int = 0,
                       expected_tokens: float = math.inf) -> int:
        """The draft length k in 0..k_max with the most expected tokens per second; 0 when plain steps win.

        With per-token acceptance a, a k-token draft yields (1 - a^(k+1)) / (1 - a) tokens per target forward of k+1
        rows, plus k draft steps (and about one catching up). A draft whose cache lags `lag` tokens behind first pays
        `catch_up(lag)` once, which the `expected_tokens` still to come must repay: the rate compared is then
        expected_tokens / (expected_tokens / rate + catch_up). A draft must beat plain steps by `margin` (noise).
        """
        a = min(max(acceptance, 0.0), 0.999)
        once = self.catch_up(lag) if math.isfinite(expected_tokens) else 0.0
        best_k, best_rate = 0, margin / self.target(1)
        for k in range(1, k_max + 1):
            tokens = (1 - a ** (k + 1)) / (1 - a)
            rate = tokens / (self.target(k + 1) + (k + 1) * self.draft_s)
            if once:
                rate = expected_tokens / (expected_tokens / rate + once)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k


@torch.inference_mode()
def measure_costs(target: Runner, draft: Runner, rows: Sequence[int] = (1, 2, 4, 8), context: int = 256,
                  repeats: int = 5) -> CostModel:
    """Time target forwards of `rows` rows and one draft step after a `context`-token prompt, and the draft's
    prompt pass per token (each the fastest of `repeats`).

    Leaves both caches empty. A few hundred milliseconds on a laptop CPU, once per engine.
    """
    ids = [(7 * i + 3) % 200 + 10 for i in range(context + max(rows))]

    def fastest(runner: Runner, n: int) -> float:
        runner.truncate(0)
        runner.forward(ids[:context], all_logits=False)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            runner.forward(ids[context:context + n])
            best = min(best, time.perf_counter() - t0)
            runner.truncate(context)
        runner.truncate(0)
        return best

    def prefill_per_token(runner: Runner) -> float:
        best = float("inf")
        for _ in range(repeats):
            runner.truncate(0)
            t0 = time.perf_counter()
            runner.forward(ids[:context], all_logits=False)
            best = min(best, time.perf_counter() - t0)
        runner.truncate(0)
        return best / context

    target_s = tuple((r, fastest(target, r)) for r in sorted(set(rows)))
    return CostModel(target_s, fastest(draft, 1), prefill_per_token(draft))
