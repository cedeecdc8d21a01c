"""Draft sources for speculative decoding: n-gram lookup, the suggestion on screen, and a small draft model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lsp_copilot.engine.prefix_cache import common_prefix
from lsp_copilot.engine.runners import Runner
from lsp_copilot.engine.sampling import Sampler


@dataclass
class Draft:
    """Proposed tokens, their draft distributions [k, V] (None = deterministic proposal) and the source's name."""

    tokens: list[int]
    probs: Tensor | None
    source: str


class LookupDrafter:
    """Prompt lookup: find the latest earlier occurrence of the sequence's last n tokens and propose what followed.

    Index invariant: `index[n][gram]` is the largest j < `indexed` with seq[j-n:j] == gram, i.e. a continuation
    seq[j] exists. The sequence only grows during a request, so the index is extended, never rebuilt.
    The proposal length adapts like the draft model's: each verified row costs about a third of a decode step on
    the row-exact path, so long proposals pay only while they are mostly accepted.
    """

    def __init__(self, max_ngram: int, min_ngram: int, k_start: int = 4, k_max: int = 12) -> None:
        self.ns = list(range(max_ngram, min_ngram - 1, -1))
        self.index: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self.ns}
        self.indexed = 0
        self.k, self.k_max = k_start, k_max

    def feedback(self, proposed: int, accepted: int) -> None:
        """Double the length after a fully accepted proposal; else shrink it to what was accepted, plus one."""
        self.k = min(self.k_max, 2 * self.k) if accepted == proposed else max(1, min(self.k, accepted + 1))

    def _extend(self, seq: list[int]) -> None:
        for j in range(max(self.indexed, 1), len(seq)):
            for n in self.ns:
                if j >= n:
                    self.index[n][tuple(seq[j - n:j])] = j
        self.indexed = max(self.indexed, len(seq))

    def propose(self, seq: list[int], k: int) -> Draft | None:
        """Up to k tokens continuing `seq`, or None when no n-gram matches."""
        k = min(k, self.k)
        if k <= 0:
            return None
        self._extend(seq)
        for n in self.ns:
            if len(seq) > n and (j := self.index[n].get(tuple(seq[-n:]))) is not None:
                return Draft(seq[j:j + k], None, "lookup")
        return None


class ScreenDrafter:
    """Drafts from the suggestion the user is looking at, while the generated text still agrees with it."""

    def __init__(self, tokenizer: Any, expected: str) -> None:
        self.tokenizer = tokenizer
        self.expected = expected
        self._cache: dict[int, list[int]] = {}

    def propose(self, generated_text: str, k: int) -> Draft | None:
        """The next k tokens of the on-screen text after `generated_text`, or None once the two diverge."""
        if k <= 0 or not self.expected.startswith(generated_text) or len(generated_text) >= len(self.expected):
            return None
        at = len(generated_text)
        if at not in self._cache:
            self._cache[at] = self.tokenizer(self.expected[at:], add_special_tokens=False)["input_ids"]
        tokens = self._cache[at][:k]
        return Draft(tokens, None, "screen") if tokens else None


class ModelDrafter:
    """A small model with the same tokenizer proposes k tokens; k adapts to how many the target accepts.

    The draft keeps its own KV cache of the sequence (rolled back to the shared prefix on each proposal), so each
    proposal costs k one-token forwards of the small model plus catching up on newly accepted tokens.
    """

    def __init__(self, runner: Runner, k_start: int, k_min: int, k_max: int) -> None:
        self.runner = runner
        self.k = k_start
        self.k_min, self.k_max = k_min, k_max

    def propose(self, seq: list[int], k_cap: int, sampler: Sampler) -> Draft | None:
        """Up to min(k, k_cap) tokens continuing `seq` ([k, V] draft probabilities when sampling)."""
        k = min(self.k, k_cap, self.runner.capacity - len(seq) - 1)
        if k <= 0:
            return None
        keep = min(common_prefix(self.runner.tokens, seq), len(seq) - 1)
        self.runner.truncate(keep)
        logits = self.runner.forward(seq[keep:], all_logits=False)[-1]
        tokens: list[int] = []
        probs: list[Tensor] = []
        for i in range(k):
            if sampler.greedy:
                tok = int(torch.argmax(sampler.restrict(logits)).item())
            else:
                p = sampler.probs(logits)
                probs.append(p)
                tok = sampler.draw(p)
            tokens.append(tok)
            if i + 1 < k:
                logits = self.runner.forward([tok])[-1]
        return Draft(tokens, torch.stack(probs) if probs else None, "draft")

    def feedback(self, proposed: int, accepted: int) -> None:
        """Adapt k: longer after a fully accepted draft, shorter after a rejection."""
        if accepted == proposed:
            self.k = min(self.k_max, self.k + 2)
        else:
            self.k = max(self.k_min, self.k - 1)
