"""Reranked answers: branch the likeliest first tokens, keep the answer under which the code after reads best.

A small model's greedy answer often loses to its second or third first token: on HumanEval infilling the eight
likeliest first tokens, each finished greedily, hold the expected line 2.4 times as often as the greedy answer alone.
Which of them to keep is decided by two log-probabilities from the same model (the noisy-channel idea of reading the
context on both sides):
    score(answer) = log p(answer | FIM prompt) + weight * log p(after | before + answer)
where the second term reads the document left to right, `before` (the prefix window) then the answer then `after`
(the rest of the cursor's line and the lines below it): an answer that defines the name the next lines use, or closes
what they expect closed, makes them likelier. The engine (engine.py) generates the candidates and runs the forwards;
this module holds the arithmetic and the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lsp_copilot.engine.detok import StopTracker
from lsp_copilot.engine.guide import NameGuide
from lsp_copilot.engine.types import GenerationResult

# a candidate cut short by these is unfinished: kept only when no finished one exists
UNFINISHED = frozenset({"time_limit", "cancelled", "context_full", "max_tokens", "pruned"})
# A branch whose log-probability so far falls this far below a finished candidate's stops early ("pruned"): adding
# tokens only lowers it, and on HumanEval infilling the kept answer was within 4.7 nats of the likeliest candidate in
# 99% of the tasks (8.7 at most), so a branch that far behind would need the lines below to favour it by more than
# PRUNE_NATS / weight. Saves the steps of the long, unlikely lines that would otherwise set the pace of the batch.
PRUNE_NATS = 6.0


@dataclass
class Branch:
    """One candidate while it is decoded: its stop tracker, name guide and result so far."""

    tracker: StopTracker
    guide: NameGuide | None
    result: GenerationResult  # `logprob` sums the log-probability of each emitted token
    last: int = -1  # the token emitted last (the next forward reads it)
    stop: str | None = None

    def push(self, token: int, logprob: float) -> None:
        """Emit `token`, picked with log-probability `logprob`."""
        self.last = token
        self.result.logprob += logprob
        if self.guide is not None and self.guide.active:
            self.guide.push(token)
        _, self.stop = self.tracker.push(token)

    def finish(self, stop: str) -> None:
        """End the branch from outside (time limit, cancellation, no room left)."""
        self.tracker.finish(stop, flush=stop != "cancelled")
        self.stop = stop

    def done(self) -> GenerationResult:
        """The finished branch's result: text after stops, stop reason, tokens."""
        r, t = self.result, self.tracker
        r.text = t.final if t.final is not None else t.emitted
        r.stop_reason = self.stop or "max_tokens"
        r.tokens = t.count
        return r


@dataclass
class Candidate:
    """One branch: its raw text, what the user would see of it and its scores."""

    result: GenerationResult  # text, stop reason, tokens and log p(answer | prompt) of the branch
    shown: str
    after_logprob: float = 0.0  # log p(after | before + answer), filled in for the finalists

    @property
    def finished(self) -> bool:
        return self.result.stop_reason not in UNFINISHED

    def score(self, weight: float) -> float:
        return self.result.logprob + weight * self.after_logprob


@dataclass(frozen=True)
class Tail:
    """The tokens read after the shared head for one answer: the answer's line up to it, the answer, `after`."""

    ids: list[int]
    scored_from: int  # ids[scored_from:] are the tokens of `after` (the one straddling the boundary included)


def first_tokens(logprobs: Tensor, k: int, max_gap: float = float("inf")) -> list[int]:
    """The k likeliest tokens of a first-pick distribution [V] (log-probabilities; -inf = not allowed), best first,
    without those more than `max_gap` nats below the best (an answer that starts that unlikely rarely wins)."""
    k = min(k, int(torch.isfinite(logprobs).sum().item()))
    if k == 0:
        return []
    top = torch.topk(logprobs, k)
    return [int(t) for t, lp in zip(top.indices.tolist(), top.values.tolist(), strict=True)
            if lp >= top.values[0].item() - max_gap]


def prune_behind(branches: Sequence[Branch], nats: float = PRUNE_NATS) -> None:
    """Stop ("pruned") every running branch whose log-probability is `nats` below a finished candidate's."""
    done = [b.result.logprob for b in branches if b.stop is not None and b.stop not in UNFINISHED]
    if not done:
        return
    floor = max(done) - nats
    for branch in branches:
        if branch.stop is None and branch.result.logprob < floor:
            branch.finish("pruned")


def finalists(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates worth scoring: finished ones with distinct, non-empty shown text (of two that show the same
    text, the one with the likelier first token); the unfinished or empty ones only when nothing else is left."""
    for pool in ([c for c in candidates if c.finished and c.shown], [c for c in candidates if c.shown], candidates):
        first_of_each: dict[str, Candidate] = {}
        for cand in pool:
            first_of_each.setdefault(cand.shown, cand)
        if first_of_each:
            return list(first_of_each.values())
    return []


def best(candidates: Sequence[Candidate], weight: float) -> Candidate:
    """The highest score; ties go to the likelier branch (the earlier one)."""
    return max(candidates, key=lambda c: c.score(weight))  # max keeps the first of equals


def split_head(before: str) -> tuple[str, str]:
    """(the lines before the cursor's line, the cursor's line up to it): the head is shared by every candidate, so
    its KV is computed once (and kept for the next keystroke on the same line)."""
    cut = before.rfind("\n") + 1
    return before[:cut], before[cut:]


def tail_tokens(tokenizer: Any, line_head: str, answer: str, after: str) -> Tail:
    """Tokenize `line_head + answer + after` as one text (natural token boundaries) and mark where `after` starts."""
    boundary = len(line_head) + len(answer)
    text = line_head + answer + after
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # a slow (Python) tokenizer has no offsets: tokenize the two sides apart
        ids: list[int] = tokenizer(text[:boundary], add_special_tokens=False)["input_ids"]
        rest: list[int] = tokenizer(after, add_special_tokens=False)["input_ids"]
        return Tail([*ids, *rest], len(ids))
    ids = list(enc["input_ids"])
    ends = [end for _, end in enc["offset_mapping"]]
    scored_from = next((i for i, end in enumerate(ends) if end > boundary), len(ids))
    return Tail(ids, scored_from)


def tail_logprob(logits: Tensor, tail: Tail) -> float:
    """Sum of log p over tail.ids[scored_from:], from the logits [1 + T, V] of a forward over [last head token] +
    tail.ids (row i predicts tail.ids[i])."""
    n = len(tail.ids)
    if tail.scored_from >= n:
        return 0.0
    rows = torch.log_softmax(logits[tail.scored_from : n].float(), dim=-1)  # [n - scored_from, V]
    target = torch.tensor(tail.ids[tail.scored_from :], device=rows.device)
    return float(rows.gather(1, target[:, None]).sum().item())
