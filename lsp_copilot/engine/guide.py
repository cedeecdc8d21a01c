"""Name-guided decoding: after `module.`, the answer first finishes a name the module defines, token by token."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

_IDENTIFIER_HEAD = re.compile(r"[A-Za-z0-9_]*")  # the identifier characters a token's text starts with


class VocabIndex:
    """Token ids by text, built once per tokenizer: tokens made only of identifier characters by their text, the
    others by the identifier part they start with (`quote_string(` under `quote_string`, `(` and ` x` under "")."""

    def __init__(self, tokenizer: Any, never: Iterable[int] = ()) -> None:
        excluded = set(never)
        self.texts: list[str] = []
        self.by_text: dict[str, list[int]] = defaultdict(list)
        self.by_head: dict[str, list[int]] = defaultdict(list)
        for i in range(len(tokenizer)):
            text = tokenizer.decode([i])
            self.texts.append(text)
            if i in excluded or not text:
                continue
            head = identifier_head(text)
            (self.by_text if head == text else self.by_head)[head].append(i)

    def continuing(self, written: str, names: Sequence[str]) -> list[int]:
        """Ids of the tokens that continue `written` toward one of `names`: a piece of a name's rest, or the whole
        rest followed by what ends an identifier. Empty when no name starts with `written`."""
        rests = {n[len(written):] for n in names if n.startswith(written)}
        ids = {i for rest in rests for k in range(1, len(rest) + 1) for i in self.by_text.get(rest[:k], ())}
        ids.update(i for rest in rests for i in self.by_head.get(rest, ()))
        return sorted(ids)


def identifier_head(text: str) -> str:
    """The identifier characters `text` starts with ("" for `(` or ` x`)."""
    match = _IDENTIFIER_HEAD.match(text)
    return match.group(0) if match else ""


class NameGuide:
    """One request's rule: the answer starts by finishing one of `names`, of which `typed` is already written.

    Active until a token ends the identifier (its text goes past the identifier characters) or no token can
    continue it; while active, `allowed()` is the set the next pick is restricted to.
    """

    def __init__(self, vocab: VocabIndex, typed: str, names: Sequence[str]) -> None:
        self.vocab = vocab
        self.names = tuple(names)
        self.written = typed
        self.active = bool(self.names)

    def allowed(self) -> list[int] | None:
        """The ids the next token may take, or None when the rule no longer applies."""
        if not self.active:
            return None
        ids = self.vocab.continuing(self.written, self.names)
        self.active = bool(ids)
        return ids or None

    def push(self, token: int) -> None:
        """Account a picked token: its identifier part extends the name; anything after it ends the rule."""
        text = self.vocab.texts[token]
        head = identifier_head(text)
        self.written += head
        if head != text:
            self.active = False
