"""Streaming detokenization and stop handling: text deltas that are whole UTF-8, cut at the first stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

REPLACEMENT = "\ufffd"


class StreamDetokenizer:
    """Decodes the generated ids as a whole each time, so merges across tokens and multi-byte characters are right.

    `stable_text()` holds back trailing U+FFFD: a byte-level token can end inside a multi-byte character, whose
    remaining bytes arrive with the next token.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []

    def push(self, token: int) -> None:
        """Add one generated token."""
        self.ids.append(token)

    def text(self) -> str:
        """All generated text, including a possibly incomplete last character."""
        return str(self.tokenizer.decode(self.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def stable_text(self) -> str:
        """The generated text without an incomplete trailing character."""
        return self.text().rstrip(REPLACEMENT)


class StopTracker:
    """Feeds tokens to a detokenizer and decides, token by token, what may be streamed and when to stop.

    Invariant: `emitted` is a prefix of every later stable text unless a stop cuts inside it (then `final` is
    authoritative). Text that could be the start of a stop string is held back until it is not.
    """

    def __init__(
        self,
        tokenizer: Any,
        stop_ids: set[int],
        eos_ids: set[int],
        stop_strings: Sequence[str],
        stop_check: Callable[[str], int | None] | None,
        max_new_tokens: int,
    ) -> None:
        self.detok = StreamDetokenizer(tokenizer)
        self.stop_ids, self.eos_ids = stop_ids, eos_ids
        self.stop_strings = [s for s in stop_strings if s]
        self.stop_check = stop_check
        self.max_new_tokens = max_new_tokens
        self.emitted = ""
        self.final: str | None = None
        self.count = 0

    def push(self, token: int) -> tuple[str, str | None]:
        """Account one token; return (text delta to stream, stop reason or None)."""
        if token in self.stop_ids:
            return self._finish(self.detok.stable_text(), "eos")
        self.detok.push(token)
        self.count += 1
        text = self.detok.stable_text()
        cut = self._stop_string_at(text)
        if cut is not None:
            return self._finish(text[:cut], "stop_string")
        if self.stop_check is not None:
            at = self.stop_check(text)
            if at is not None:
                return self._finish(text[: max(0, at)], "stop_check")
        if self.count >= self.max_new_tokens:
            return self._finish(text, "max_tokens")
        safe = text[: len(text) - self._held_back(text)]
        return self._advance(safe), None

    def finish(self, reason: str, flush: bool) -> tuple[str, str]:
        """End for a reason outside the text (cancel, time, context): flush held-back text if `flush`."""
        return self._finish(self.detok.stable_text() if flush else self.emitted, reason)

    def _finish(self, text: str, reason: str) -> tuple[str, str]:
        self.final = text
        return self._advance(text), reason

    def _advance(self, text: str) -> str:
        if len(text) <= len(self.emitted) or not text.startswith(self.emitted):
            return ""
        delta = text[len(self.emitted):]
        self.emitted = text
        return delta

    def _stop_string_at(self, text: str) -> int | None:
        hits = [i for s in self.stop_strings if (i := text.find(s)) >= 0]
        return min(hits) if hits else None

    def _held_back(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
        best = 0
        for s in self.stop_strings:
            for n in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:n]):
                    best = n
                    break
        return best
