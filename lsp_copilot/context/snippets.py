"""Similar snippets: sliding windows over other open files, ranked by Jaccard similarity of identifier sets."""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def identifier_set(text: str) -> frozenset[str]:
    """The identifiers (and keywords) of a text: the bag-of-words the similarity is computed on."""
    return frozenset(_IDENT.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|, 0 for two empty sets."""
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def containment(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a|: how much of `a` is already in `b` (0 for an empty a)."""
    return len(a & b) / len(a) if a else 0.0


@dataclass(frozen=True)
class Snippet:
    """A window of another file similar to the code around the cursor."""

    key: str  # the document's uri
    path: str  # workspace-relative path, for the label
    start_line: int  # 0-based first line of the window
    text: str
    score: float


@dataclass(frozen=True)
class _Window:
    start_line: int
    end_line: int  # exclusive
    idents: frozenset[str]


class SnippetRetriever:
    """Caches each document's windows per version; ranks them against a query window."""

    def __init__(self, window_lines: int, stride_lines: int) -> None:
        self.window_lines = window_lines
        self.stride_lines = stride_lines
        self._cache: dict[str, tuple[int, list[str], list[_Window]]] = {}  # key -> (version, lines, windows)

    def windows(self, key: str, version: int, text: str) -> tuple[list[str], list[_Window]]:
        """The windows of a document (window_lines lines every stride_lines lines), computed once per version."""
        cached = self._cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        lines = text.split("\n")
        windows = []
        last_start = max(0, len(lines) - self.window_lines)
        starts = list(range(0, last_start + 1, self.stride_lines))
        if starts[-1] != last_start:
            starts.append(last_start)  # the end of the file is covered too
        for start in starts:
            end = min(len(lines), start + self.window_lines)
            idents = identifier_set("\n".join(lines[start:end]))
            if idents:
                windows.append(_Window(start, end, idents))
        self._cache[key] = (version, lines, windows)
        return lines, windows

    def forget(self, keep: set[str]) -> None:
        """Drop the cached windows of documents that are no longer candidates."""
        for key in [k for k in self._cache if k not in keep]:
            del self._cache[key]

    def retrieve(self, query: str, local: str, candidates: list[tuple[str, int, str, str]], top_k: int,
                 min_similarity: float, duplicate_similarity: float) -> list[Snippet]:
        """Best `top_k` windows of candidates (key, version, path, text) by Jaccard with `query`.

        Windows whose identifiers are nearly all in `local` (the code around the cursor) are dropped, and at
        most one window per overlapping region of a file is kept.
        """
        query_set = identifier_set(query)
        local_set = identifier_set(local)
        if not query_set:
            return []
        scored: list[tuple[float, str, str, int, int, list[str], frozenset[str]]] = []
        for key, version, path, text in candidates:
            lines, windows = self.windows(key, version, text)
            n_query = len(query_set)
            for w in windows:
                inter = len(query_set & w.idents)  # jaccard(query_set, w.idents), inlined: this loop is the hot one
                score = inter / (n_query + len(w.idents) - inter)
                if score >= min_similarity:
                    scored.append((score, key, path, w.start_line, w.end_line, lines, w.idents))
        scored.sort(key=lambda s: (-s[0], s[2], s[3]))
        chosen: list[Snippet] = []
        taken: dict[str, list[tuple[int, int]]] = {}
        for score, key, path, start, end, lines, idents in scored:
            # Near-duplicate: the window's identifiers are (almost) all in the code around the cursor already.
            # (Checked here, best first, rather than for every window: a skipped window never blocks another.)
            if containment(idents, local_set) >= duplicate_similarity:
                continue
            if any(start < e and s < end for s, e in taken.get(key, [])):
                continue  # overlaps a better window of the same file
            taken.setdefault(key, []).append((start, end))
            chosen.append(Snippet(key, path, start, "\n".join(lines[start:end]).strip("\n"), score))
            if len(chosen) >= top_k:
                break
        return chosen
