"""How a file already uses a module's members: the counts the name guide's cache model mixes in."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# `module.`, `pkg.module.` (the last name is the module; the first must be imported), `module::`, `module->` at the
# end of the text before the cursor: group 1 the packages (`pkg.`), 2 the module's name, 3 the member typed so far.
MEMBER_ACCESS = re.compile(
    r"(?<![\w$.])((?:[A-Za-z_$][\w$]*\.)*)([A-Za-z_$][\w$]*)\s*(?:\.|::|->)\s*([A-Za-z_$][\w$]*)?$")
_LEXEME = re.compile(r"[A-Za-z_$][\w$]*|\S")  # identifiers, and any other single visible character


def member_uses(text: str, line_start: int, offset: int, names: Iterable[str], order: int = 2) -> dict[str, int]:
    """How often the file writes each of `names` after the qualifier the cursor follows (`errors.` in
    `raise errors.|`), the cursor's own line up to the cursor left out; names never written are absent.

    Counted in the longest context that has uses (a nested cache n-gram, Hellendoorn & Devanbu 2017): the uses
    preceded on their line by the same `order` lexemes as the cursor's (`raise`; `append (`), else by fewer, else all.
    `raise errors.` then counts the names the file raises, not the defects it appends.
    """
    m = MEMBER_ACCESS.search(text[line_start:offset])
    if m is None:
        return {}
    before = _LEXEME.findall(text[line_start:line_start + m.start()])[-order:]
    pattern = re.compile(rf"(?<![\w$.]){re.escape(m.group(1) + m.group(2))}\s*(?:\.|::|->)\s*([A-Za-z_$][\w$]*)")
    wanted = set(names)
    by_depth: list[Counter[str]] = [Counter() for _ in range(len(before) + 1)]
    for lo, hi in ((0, line_start), (offset, len(text))):
        for use in pattern.finditer(text, lo, hi):
            if use.group(1) not in wanted:
                continue
            own_line = text.rfind("\n", 0, use.start()) + 1
            depth = _shared_tail(_LEXEME.findall(text[own_line:use.start()]), before)
            for d in range(depth + 1):
                by_depth[d][use.group(1)] += 1
    found = next((c for c in reversed(by_depth) if c), Counter())
    return dict(found)


def _shared_tail(a: list[str], b: list[str]) -> int:
    """How many lexemes `a` and `b` share at their ends."""
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n
