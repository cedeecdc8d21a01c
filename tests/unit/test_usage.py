"""How a file already uses a module's members: counts in the longest shared context (the name guide's cache)."""

from __future__ import annotations

from lsp_copilot.context.usage import member_uses

FILE = ("from pkg import errors\n\n"
        "def parse(value, defects):\n"
        "    if not value:\n"
        "        raise errors.HeaderParseError('empty')\n"
        "    if value[0] == '(':\n"
        "        raise errors.HeaderParseError('comment')\n"
        "    defects.append(errors.InvalidHeaderDefect('a'))\n"
        "    defects.append(errors.InvalidHeaderDefect('b'))\n"
        "    defects.append(errors.ObsoleteHeaderDefect('c'))\n"
        "    kind = errors.MessageError\n"
        "    CURSOR\n"
        "    return other.errors.Unrelated, errors . Spaced\n")
NAMES = ["HeaderParseError", "InvalidHeaderDefect", "ObsoleteHeaderDefect", "MessageError", "Spaced"]


def _uses(line: str, names: list[str] = NAMES) -> dict[str, int]:
    text = FILE.replace("CURSOR", line)
    line_start = FILE.index("CURSOR") - len("    ")
    return member_uses(text, line_start, line_start + len("    " + line), names)


def test_uses_in_the_same_context_count_first() -> None:
    assert _uses("raise errors.") == {"HeaderParseError": 2}
    assert _uses("defects.append(errors.") == {"InvalidHeaderDefect": 2, "ObsoleteHeaderDefect": 1}


def test_without_a_shared_context_every_use_counts() -> None:
    every = {"HeaderParseError": 2, "InvalidHeaderDefect": 2, "ObsoleteHeaderDefect": 1, "MessageError": 1,
             "Spaced": 1}
    assert _uses("yield errors.") == every  # (`other.errors.` is another qualifier; `errors . x` is the same)
    assert _uses("raise errors.", ["MessageError", "Spaced"]) == {"MessageError": 1, "Spaced": 1}  # back off
    assert _uses("raise errors.Hea") == {"HeaderParseError": 2}  # what is typed does not change the context


def test_not_after_a_qualifier_nothing_counts() -> None:
    assert _uses("x = 1") == {} and _uses("raise ") == {}
