"""Post-processing: syntax-aware stop inside the decode loop, bracket balance, suffix-overlap trimming."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsp_copilot.context import CompletionContext

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {")": "(", "]": "[", "}": "{"}
PREFIX_ORIGIN = -1  # stack entries and strings opened before the cursor; completion ones carry their text index
# Lines that continue the block they follow (at the block's own indentation), in any language.
CONTINUATION_WORDS = frozenset({"else", "elif", "elsif", "elseif", "except", "finally", "catch", "rescue", "ensure",
                                "when", "case", "default"})
_WORD = re.compile(r"[A-Za-z_]\w*")
_OPEN_CHAR = re.compile(r"'(?:\\[^'\n]{0,10}|[^\\'\n])?\Z")  # a character literal that may still be closed
_OVERLAP_PUNCT = frozenset(")]}\"'`;:,.")


@dataclass(frozen=True)
class Syntax:
    """What the scanner must know of a language: comments, strings and how blocks end."""

    line_comment: str | None = None  # regex of a line-comment opener
    block_comments: tuple[tuple[str, str], ...] = ()  # (open, close) literals
    strings: tuple[tuple[str, str, bool, bool], ...] = ()  # (open, close, multiline, escapes), longest open first
    char_literal: bool = False  # 'x' is a character literal, a lone ' is not a string (Rust lifetimes, C chars)
    indent_blocks: bool = False  # Python: a block ends by dedenting alone, there is no closing line
    closer_words: tuple[str, ...] = ()  # a line starting with one closes a block (`end`, `fi`, `done`)


_DQ = ('"', '"', False, True)
_SQ = ("'", "'", False, True)
_C_LIKE = Syntax(line_comment=r"//", block_comments=(("/*", "*/"),), strings=(_DQ,), char_literal=True)
_JS_LIKE = Syntax(line_comment=r"//", block_comments=(("/*", "*/"),), strings=(_DQ, _SQ, ("`", "`", True, True)))
SYNTAXES: dict[str, Syntax] = {  # keyed by tree-sitter grammar name (see languages.py)
    "python": Syntax(line_comment=r"#", strings=(('"""', '"""', True, True), ("'''", "'''", True, True), _DQ, _SQ),
                     indent_blocks=True),
    "javascript": _JS_LIKE,
    "typescript": _JS_LIKE,
    "tsx": _JS_LIKE,
    "go": Syntax(line_comment=r"//", block_comments=(("/*", "*/"),), strings=(_DQ, ("`", "`", True, False)),
                 char_literal=True),
    "rust": Syntax(line_comment=r"//", block_comments=(("/*", "*/"),), strings=(('"', '"', True, True),),
                   char_literal=True),
    "c": _C_LIKE,
    "cpp": _C_LIKE,
    "java": _C_LIKE,
    "csharp": _C_LIKE,
    "ruby": Syntax(line_comment=r"#", strings=(('"', '"', True, True), ("'", "'", True, True)),
                   closer_words=("end",)),
    "php": Syntax(line_comment=r"//|#(?!\[)", block_comments=(("/*", "*/"),), strings=(_DQ, _SQ)),
    "lua": Syntax(line_comment=r"--", block_comments=(("--[[", "]]"),),
                  strings=(("[[", "]]", True, False), _DQ, _SQ), closer_words=("end", "until")),
    "bash": Syntax(line_comment=r"(?<![^\s;(])#", strings=(('"', '"', True, True), ("'", "'", True, False)),
                   closer_words=("fi", "done", "esac")),
}
PLAIN = Syntax()  # unknown languages: brackets only (apostrophes in prose are not strings)


def syntax_for(language: str | None) -> Syntax:
    """The scanner syntax of a tree-sitter grammar name; brackets-only for plain text and unknown languages."""
    return SYNTAXES.get(language or "", PLAIN)


@dataclass(frozen=True)
class PostprocessSettings:
    """Knobs of the stop policy and the final clean-up."""

    tab_size: int = 4  # a tab's width when comparing indentation
    min_duplicate_chars: int = 4  # a completed line equal to the next suffix line stops generation from this length


# ----------------------------------------------------------------------------------------------------------- scanner

CODE, STRING, BLOCK_COMMENT = 0, 1, 2


@dataclass(frozen=True)
class Event:
    """Something a closer did: popped a bracket (origin of its opener), mismatched, or closed a string."""

    kind: str  # "pop" | "mismatch" | "string"
    pos: int  # index in the scanned text (completion coordinates)
    char: str  # the closer or the string delimiter
    origin: int  # PREFIX_ORIGIN or the completion index where the popped bracket / closed string opened


class _Patterns:
    """Regexes compiled once per Syntax: the interesting tokens of code, and each string's and comment's end."""

    def __init__(self, syntax: Syntax) -> None:
        parts: list[str] = []
        for open_, _ in syntax.block_comments:
            parts.append(f"(?P<block>{re.escape(open_)})")
            break
        if len(syntax.block_comments) > 1:  # pragma: no cover - no table entry has two block comment kinds
            raise ValueError("one block-comment kind per language")
        if syntax.line_comment:
            parts.append(f"(?P<line>{syntax.line_comment})")
        if syntax.char_literal:
            parts.append(r"(?P<char>'(?:\\.[^'\n]{0,9}|[^\\'\n])')")
        if syntax.strings:
            parts.append("(?P<string>" + "|".join(re.escape(s[0]) for s in syntax.strings) + ")")
        parts.append(r"(?P<open>[(\[{])|(?P<close>[)\]}])")
        self.code = re.compile("|".join(parts))
        self.strings = {s[0]: s for s in syntax.strings}
        self.string_end = {
            s[0]: re.compile((r"\\(?:.|$)|" if s[3] else "") + re.escape(s[1])) for s in syntax.strings
        }
        self.block_close = syntax.block_comments[0][1] if syntax.block_comments else ""


@functools.cache
def _patterns(syntax: Syntax) -> _Patterns:
    """The compiled regexes of a Syntax, built once (Syntax is immutable, so this is a pure cache)."""
    return _Patterns(syntax)


class Scanner:
    """Line-by-line lexer state: code / string / block comment, and the bracket stack.

    Invariant: after `end_line`, the state describes the text up to and including that newline; a line comment never
    outlives its line; a single-line string is dropped (unterminated) at the newline unless it ends with a backslash.
    """

    __slots__ = ("escape_pending", "mode", "mode_origin", "own_depth", "pat", "stack", "string_open")

    def __init__(self, syntax: Syntax) -> None:
        self.pat = _patterns(syntax)
        self.mode = CODE
        self.string_open = ""  # opening delimiter of the current string
        self.mode_origin = PREFIX_ORIGIN  # where the current string / block comment opened
        self.stack: list[tuple[str, int]] = []  # (opener, origin); origin >= 0: opened by the completion
        self.own_depth = 0  # entries of `stack` opened by the completion
        self.escape_pending = False

    def copy(self) -> Scanner:
        twin = Scanner.__new__(Scanner)
        twin.pat, twin.mode, twin.string_open = self.pat, self.mode, self.string_open
        twin.mode_origin = self.mode_origin
        twin.stack, twin.own_depth, twin.escape_pending = list(self.stack), self.own_depth, self.escape_pending
        return twin

    def scan_line(self, line: str, offset: int, origin: int, events: list[Event] | None) -> None:
        """Advance over one line (no newline in it). `origin` >= 0: the line belongs to the completion and starts at
        completion index `offset`; PREFIX_ORIGIN: prefix text. Closers' events go to `events` when given."""
        pat, pos, end = self.pat, 0, len(line)
        while pos < end:
            if self.mode == STRING:
                m = pat.string_end[self.string_open].search(line, pos)
                if m is None:
                    return
                pos = m.end()
                if m.group().startswith("\\") and m.group() != pat.strings[self.string_open][1]:
                    self.escape_pending = m.end() == end and len(m.group()) == 1
                    continue
                if events is not None:
                    events.append(Event("string", offset + m.start(), m.group(), self.mode_origin))
                self.mode = CODE
            elif self.mode == BLOCK_COMMENT:
                at = line.find(pat.block_close, pos)
                if at < 0:
                    return
                pos = at + len(pat.block_close)
                self.mode = CODE
            else:
                m = pat.code.search(line, pos)
                if m is None:
                    return
                pos = m.end()
                kind = m.lastgroup
                where = offset + m.start() if origin >= 0 else PREFIX_ORIGIN
                if kind == "open":
                    self.stack.append((m.group(), where))
                    self.own_depth += where >= 0
                elif kind == "close":
                    self._close(m.group(), offset + m.start(), events)
                elif kind == "string":
                    self.mode, self.string_open, self.mode_origin = STRING, m.group(), where
                elif kind == "block":
                    self.mode, self.mode_origin = BLOCK_COMMENT, where
                elif kind == "line":
                    return

    def _close(self, closer: str, pos: int, events: list[Event] | None) -> None:
        opener = CLOSERS[closer]
        if not self.stack:
            # The prefix window may start after the opener: an unknown prefix bracket closes.
            if events is not None:
                events.append(Event("pop", pos, closer, PREFIX_ORIGIN))
            return
        top, origin = self.stack[-1]
        if top != opener:
            if events is not None:
                events.append(Event("mismatch", pos, closer, origin))
                return
            # Prefix text is taken as written: close the nearest matching opener if there is one.
            for i in range(len(self.stack) - 1, -1, -1):
                if self.stack[i][0] == opener:
                    del self.stack[i:]
                    self.own_depth = sum(1 for _, o in self.stack if o >= 0)
                    break
            return
        self.stack.pop()
        self.own_depth -= origin >= 0
        if events is not None:
            events.append(Event("pop", pos, closer, origin))

    def end_line(self) -> None:
        """The newline: ends line comments and (unless escaped) single-line strings."""
        if self.mode == STRING and not self.escape_pending and not self.pat.strings[self.string_open][2]:
            self.mode = CODE
        self.escape_pending = False

    @property
    def in_own_construct(self) -> bool:
        """Inside a bracket, string or block comment that the completion opened (the logical line goes on)."""
        return self.own_depth > 0 or (self.mode != CODE and self.mode_origin >= 0)


def scan_prefix(syntax: Syntax, prefix: str) -> Scanner:
    """The scanner state at the cursor: the prefix scanned as prefix text (its last line left open)."""
    scanner = Scanner(syntax)
    lines = prefix.split("\n")
    for line in lines[:-1]:
        scanner.scan_line(line, 0, PREFIX_ORIGIN, None)
        scanner.end_line()
    scanner.scan_line(lines[-1], 0, PREFIX_ORIGIN, None)
    return scanner


# ------------------------------------------------------------------------------------------------------- stop policy

NO_STATEMENT, FIRST, BODY, FLAT = 0, 1, 2, 3  # where the completion is relative to the cursor's block


@dataclass
class _LineState:
    """Everything `check` carries from one completed line to the next (copied to try the unfinished line)."""

    scanner: Scanner
    phase: int  # NO_STATEMENT -> FIRST (first statement at the base indentation) -> BODY (went deeper) or FLAT
    base: int  # indentation width of the block the cursor is in
    decorated: bool  # the first statement so far is a decorator line (`@...`): the decorated one follows
    continued: bool  # the previous line ended with a backslash continuation
    line_no: int = 0

    def copy(self) -> _LineState:
        return _LineState(self.scanner.copy(), self.phase, self.base, self.decorated, self.continued, self.line_no)


class StopPolicy:
    """Decides, after each decode step, whether the completion has left the enclosing block or finished the line.

    `check(text)` gets the whole completion so far and returns the index to cut at (stop) or None (go on). It is
    incremental: completed lines are scanned once; only the unfinished last line is re-scanned per call.
    """

    def __init__(self, ctx: CompletionContext, settings: PostprocessSettings | None = None) -> None:
        self.ctx = ctx
        self.settings = settings or PostprocessSettings()
        self.syntax = syntax_for(ctx.language)
        self.line_prefix = ctx.prefix[ctx.prefix.rfind("\n") + 1:]
        self.multiline = bool(ctx.multiline)
        suffix_lines = ctx.suffix.split("\n")
        self.suffix_line = suffix_lines[0]  # the rest of the cursor line
        self.suffix_next = ctx.suffix.lstrip()[:1]  # the next non-blank character after the cursor
        self.suffix_dup = next((s.strip() for s in suffix_lines[1:] if s.strip()), "")  # the next non-blank line
        cursor_line_blank = not self.line_prefix.strip()
        self._start = _LineState(
            scanner=scan_prefix(self.syntax, ctx.prefix),
            phase=NO_STATEMENT if cursor_line_blank else FIRST,
            base=self._width(self.line_prefix if cursor_line_blank else _indent(self.line_prefix)),
            decorated=self.line_prefix.lstrip().startswith("@"),
            continued=False,
        )
        self._reset()

    def _reset(self) -> None:
        self._state = self._start.copy()
        self._pos = 0  # completion index just after the last completed line
        self._head = ""  # text[:_pos] as last seen (a different head means the text was rewritten: start over)
        self._stop: int | None = None  # a stop found on a completed line, valid while the text starts with:
        self._stop_text = ""

    def _width(self, whitespace: str) -> int:
        return len(whitespace.expandtabs(self.settings.tab_size))

    def check(self, text: str) -> int | None:
        """Index to cut `text` at, or None to continue. Stable: a later, longer text gives the same index."""
        if self._stop is not None and text.startswith(self._stop_text):
            return self._stop
        if self._stop is not None or text[: self._pos] != self._head:
            self._reset()  # the text was rewritten (e.g. by the streaming detokenizer): scan it afresh
        while (nl := text.find("\n", self._pos)) >= 0:
            stop = self._line(text, self._pos, nl, self._state, complete=True)
            if stop is not None:
                self._stop, self._stop_text = stop, text[: nl + 1]
                return stop
            self._pos = nl + 1
            self._state.line_no += 1
        self._head = text[: self._pos]
        return self._line(text, self._pos, len(text), self._state.copy(), complete=False)

    def _line(self, text: str, start: int, end: int, st: _LineState, complete: bool) -> int | None:
        """Process text[start:end] (one line; `complete`: its newline is at `end`) and return a stop index or None."""
        line = text[start:end]
        content = len(line) - len(line.lstrip(" \t"))
        has_content = content < len(line)
        logical = not st.scanner.in_own_construct and not st.continued and st.scanner.mode == CODE
        include_line = False  # stop at this line's end, the line itself belongs to the completion
        if logical and has_content and self.multiline:
            if self._duplicates_suffix(line, st) and complete:
                return max(start - 1, 0)
            verdict = self._indentation(line, content, st, complete)
            if verdict == "stop":
                return max(start - 1, 0)
            include_line = verdict == "include"
        events: list[Event] = []
        st.scanner.scan_line(line, start, start, events)
        settled = end if complete else start + self._settled(line)
        for event in events:
            if event.pos >= settled:
                break  # may belong to a token still being written
            if event.kind == "mismatch":
                return event.pos
            if event.origin == PREFIX_ORIGIN and (event.kind == "pop" or event.kind == "string"):
                follows = self.ctx.suffix.startswith(event.char) if event.kind == "string" \
                    else self.suffix_next == event.char
                if follows:
                    return event.pos  # the text after the cursor already closes it
                include_line = include_line or (event.kind == "pop" and self.multiline)
        if not complete:
            return None
        if not self.multiline and not st.scanner.in_own_construct:
            return end  # single-line mode: the logical line is complete
        if include_line and not st.scanner.in_own_construct:
            return end
        st.continued = st.scanner.mode == CODE and line.rstrip().endswith("\\") and self.syntax.indent_blocks
        st.scanner.end_line()
        return None

    def _settled(self, line: str) -> int:
        """Length of the unfinished line whose tokens cannot change any more: a trailing `'` that may still become a
        character literal (`'}'`) holds back what follows it."""
        if self.syntax.char_literal:
            m = _OPEN_CHAR.search(line)
            if m is not None:
                return m.start()
        return len(line)

    def _duplicates_suffix(self, line: str, st: _LineState) -> bool:
        """The line repeats the next line of the suffix (a completion that ran into the existing code)."""
        if st.line_no == 0 and self.line_prefix.strip():
            return False
        stripped = line.strip()
        return (len(stripped) >= self.settings.min_duplicate_chars and stripped == self.suffix_dup
                and any(ch.isalnum() for ch in stripped))

    def _indentation(self, line: str, content: int, st: _LineState, complete: bool) -> str | None:
        """Block rule for a logical line with content: "stop" before it, "include" it then stop, or None."""
        head = line[content:]
        word_match = _WORD.match(head)
        word = word_match.group() if word_match else ""
        if not complete and word and word_match is not None and word_match.end() == len(head):
            return None  # a word still being written (`el` may become `else`, `e` may become `end`): wait
        closer = head[:1] in CLOSERS or word in self.syntax.closer_words
        if st.line_no == 0:  # the cursor line: it fixes the base indentation when it was blank
            if st.phase == NO_STATEMENT:
                st.base = self._width(self.line_prefix + line[:content])
                st.phase, st.decorated = FIRST, head.startswith("@")
            return None
        width = self._width(line[:content])
        if st.phase == NO_STATEMENT:
            if width < st.base:
                return "include" if closer and not self.syntax.indent_blocks else "stop"
            st.phase, st.decorated = FIRST, head.startswith("@")
            return None
        if width > st.base:
            if st.phase == FIRST:
                st.phase = BODY  # the first statement opened a block: complete that block, then stop
            return None
        if width == st.base:
            if st.phase == FIRST:
                if st.decorated:
                    st.decorated = head.startswith("@")
                else:
                    st.phase = FLAT
                return None
            if st.phase == BODY:
                if word in CONTINUATION_WORDS:
                    return None
                return "include" if closer and not self.syntax.indent_blocks else "stop"
            return None
        # Dedented below the cursor's block: it has ended.
        return "include" if closer and not self.syntax.indent_blocks else "stop"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


# ---------------------------------------------------------------------------------------------------------- finalize


def finalize(text: str, ctx: CompletionContext, settings: PostprocessSettings | None = None) -> str:
    """The suggestion to show: cut by the stop policy, overlap with the suffix trimmed, brackets balanced, trailing
    whitespace dropped. Never adds text except closing brackets the completion itself opened and left open."""
    settings = settings or PostprocessSettings()
    stop = StopPolicy(ctx, settings).check(text)
    if stop is not None:
        text = text[:stop]
    text = trim_suffix_overlap(text, ctx)
    text = balance_brackets(text, ctx)
    return strip_trailing_whitespace(text, ctx)


def _scan_completion(start: Scanner, text: str, base: int = 0) -> tuple[Scanner, list[Event]]:
    """Scan `text` (completion coordinates start at `base`) from a copy of `start`; the state after it, and events."""
    scanner = start.copy()
    events: list[Event] = []
    pos = 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        scanner.scan_line(line, base + pos, base + pos, events)
        if i < len(lines) - 1:
            scanner.end_line()
        pos += len(line) + 1
    return scanner, events


def _tail_is_safe(start: Scanner, text: str, cut: int) -> bool:
    """Dropping text[cut:] leaves no bracket of text[:cut] unclosed: the tail closes only prefix brackets."""
    kept, _ = _scan_completion(start, text[:cut])
    _, events = _scan_completion(kept, text[cut:], base=cut)
    # The tail's own unclosed brackets go with it (the suffix holds the same text).
    return not any(e.kind == "mismatch" or (e.kind == "pop" and 0 <= e.origin < cut) for e in events)


def trim_suffix_overlap(text: str, ctx: CompletionContext) -> str:
    """Drop the end of `text` that repeats the start of the suffix: whole lines (the next line, closing brackets) or
    the rest of the cursor line. Only tails that close nothing the completion opened are dropped."""
    if not text or not ctx.suffix.strip():
        return text
    syntax = syntax_for(ctx.language)
    start = scan_prefix(syntax, ctx.prefix)
    cut = _line_overlap(text, ctx)
    if cut is not None and _tail_is_safe(start, text, cut):
        return text[:cut]
    cut = _same_line_overlap(text, ctx)
    if cut is not None and _tail_is_safe(start, text, cut):
        return text[:cut]
    return text


def _line_overlap(text: str, ctx: CompletionContext) -> int | None:
    """Cut index before the longest run of whole trailing lines equal (stripped) to the suffix's first lines."""
    suffix_lines = [s.strip() for s in ctx.suffix.split("\n") if s.strip()]
    line_prefix_blank = not ctx.prefix[ctx.prefix.rfind("\n") + 1:].strip()
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    lines = text.split("\n")
    # candidate tails start at a line boundary (line 0 only when the cursor line was blank before the cursor)
    best: int | None = None
    for k in range(len(lines) - 1, -1, -1):
        if k == 0 and not line_prefix_blank:
            continue
        tail = [s.strip() for s in lines[k:] if s.strip()]
        if tail and tail == suffix_lines[: len(tail)]:
            best = max(starts[k] - 1, 0)  # keep searching upward for a longer run
    return best


def _same_line_overlap(text: str, ctx: CompletionContext) -> int | None:
    """Cut index when the completion's last line ends with the rest of the cursor line (or its leading punctuation)."""
    rest = ctx.suffix.split("\n", 1)[0].strip()
    if not rest:
        return None
    body = text.rstrip(" \t")
    last_line = body[body.rfind("\n") + 1:]
    for k in range(min(len(rest), len(last_line)), 0, -1):
        piece = rest[:k]
        if last_line.endswith(piece) and (k == len(rest) or all(ch in _OVERLAP_PUNCT for ch in piece)):
            return len(body) - k
    return None


def balance_brackets(text: str, ctx: CompletionContext) -> str:
    """Brackets the completion opens are closed: by the suffix, by cutting back to the last balanced line end, or,
    for a single line, by appending the missing closers. A closer of the wrong kind ends the completion."""
    syntax = syntax_for(ctx.language)
    start = scan_prefix(syntax, ctx.prefix)
    after, events = _scan_completion(start, text)
    mismatch = next((e.pos for e in events if e.kind == "mismatch"), None)
    if mismatch is not None:
        return balance_brackets(text[:mismatch], ctx)
    open_own = [opener for opener, origin in after.stack if origin >= 0]
    if not open_own:
        return text
    needed = "".join(OPENERS[o] for o in reversed(open_own))
    if "".join(ch for ch in ctx.suffix[:2000] if ch in CLOSERS or ch in OPENERS).startswith(needed):
        return text  # the brackets after the cursor close them
    if "\n" in text:
        scanner = start.copy()
        pos, best = 0, None
        lines = text.split("\n")
        for line in lines[:-1]:
            scanner.scan_line(line, pos, pos, None)
            scanner.end_line()
            pos += len(line) + 1
            if not scanner.in_own_construct and text[: pos - 1].strip():
                best = pos - 1
        if best is not None:
            return text[:best]
    if after.mode != CODE and after.mode_origin >= 0:
        return text  # ends inside its own string or comment: closing brackets there would be wrong
    return text.rstrip(" \t") + needed


def strip_trailing_whitespace(text: str, ctx: CompletionContext) -> str:
    """Trailing whitespace goes when it holds a newline or nothing follows on the cursor line; a space before the
    rest of the line (`x = |1`) stays."""
    body = text.rstrip()
    tail = text[len(body):]
    if "\n" in tail or not ctx.suffix.split("\n", 1)[0].strip():
        return body
    return text
