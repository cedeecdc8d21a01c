"""Training-data augmentation: consistent renaming of function-local identifiers (more distinct code, same programs).

The stdlib gives ~8.4 M tokens and a 20 M model memorises them after ~6 epochs. Renaming the variables and
parameters that live only inside functions makes each epoch's copy of a file new text with the same structure, and
teaches what a completion needs most: to reuse the names the surrounding code defines, not the names it memorised.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import random
import re
import tokenize
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lsp_copilot.training.corpus import SourceFile

# Names never renamed: the language's, the builtins, the conventional receivers and the soft keywords.
_RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls", "match", "case", "_", "type"}
# Code that reaches its locals by name, which a renaming would break.
_DYNAMIC = ("locals()", "vars()", "eval(", "exec(", "import *")

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAMED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler, ast.MatchAs, ast.MatchStar)
_Function = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _bound_names(node: ast.AST) -> Iterable[str]:
    """The names a node binds in its scope (an argument, a Store target, an `except ... as` name, a def or class)."""
    if isinstance(node, ast.arg):
        yield node.arg
    elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        yield node.id
    elif isinstance(node, _NAMED) and node.name:
        yield node.name


def _is_api(name: str) -> bool:
    """Whether a module- or class-level function is callable from other files: public, dunder and sunder names
    (`_missing_`)."""
    return not name.startswith("_") or name.endswith("_")


class _ScopeScan(ast.NodeVisitor):
    """Sorts every binding into function scope or module/class scope, and collects names that must keep their
    spelling (attributes, keyword arguments, globals, imports, names inside f-strings)."""

    def __init__(self) -> None:
        self.in_function: Counter[str] = Counter()
        self.outside: set[str] = set()
        self.pinned: set[str] = set()
        self.depth = 0  # how many function scopes enclose the node being visited

    def generic_visit(self, node: ast.AST) -> None:
        for name in _bound_names(node):
            if self.depth:
                self.in_function[name] += 1
            else:
                self.outside.add(name)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not self.depth and _is_api(node.name):
            # Callers in other files may pass these by keyword: a module's or class's public signature stays.
            self.pinned.update(a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                                                node.args.vararg, node.args.kwarg) if a is not None)
        elif isinstance(node, ast.Attribute):
            self.pinned.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            self.pinned.add(node.arg)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            self.pinned.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):  # every word of the statement: module path and names
            dotted = [getattr(node, "module", None) or "", *(f"{a.name}.{a.asname or ''}" for a in node.names)]
            self.pinned.update(part for path in dotted for part in path.split(".") if part)
        elif isinstance(node, ast.JoinedStr):  # f-string internals tokenize differently across Python versions
            self.pinned.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
        if isinstance(node, ast.ClassDef):  # a class body is not a function scope, even inside a function
            saved, self.depth = self.depth, 0
            super().generic_visit(node)
            self.depth = saved
        elif isinstance(node, _Function):
            self.depth += 1
            super().generic_visit(node)
            self.depth -= 1
        else:
            super().generic_visit(node)


def renamable_names(source: str) -> Counter[str]:
    """Names bound only inside functions and safe to rename file-wide, with how often they are bound.

    Invariant: renaming all of them consistently (code tokens only, never after a `.`) gives a program that behaves
    the same, for its own code and for callers in other files (the parameters of public functions and methods keep
    their names), except through strings and comments that mention them. Empty for code that cannot be parsed or that
    reaches names dynamically (`locals()`, `eval`, star imports).
    """
    if any(marker in source for marker in _DYNAMIC):
        return Counter()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return Counter()
    scan = _ScopeScan()
    scan.visit(tree)
    blocked = scan.outside | scan.pinned | _RESERVED
    return Counter({n: c for n, c in scan.in_function.items() if n not in blocked and not n.startswith("__")})


def apply_renames(source: str, mapping: dict[str, str]) -> str:
    """`source` with every code NAME token in `mapping` replaced (not attribute names after `.`, not strings or
    comments). Returns `source` unchanged if it does not tokenize."""
    edits: list[tuple[int, int, int, str]] = []  # (row, col, end col, new name)
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and tok.string in mapping and previous != ".":
                edits.append((tok.start[0], tok.start[1], tok.end[1], mapping[tok.string]))
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                previous = tok.string
    except (tokenize.TokenError, SyntaxError):
        return source
    lines = source.splitlines(keepends=True)
    for row, col, end, new in reversed(edits):  # right to left, so earlier columns stay valid
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[end:]
    return "".join(lines)


def draw_renames(source: str, pool: Sequence[str], rng: random.Random, share: float = 0.7,
                 names: Iterable[str] | None = None) -> dict[str, str]:
    """A renaming for about `share` of the renamable names of `source` (`names`, when already known): old -> a
    distinct pool name the file lacks."""
    taken = set(_words(source))  # every identifier-like word, strings and comments included
    mapping: dict[str, str] = {}
    for name in sorted(renamable_names(source) if names is None else names):
        if not pool or rng.random() >= share:
            continue
        for _ in range(8):  # a few tries for a pool name the file does not contain yet
            new = rng.choice(pool)
            if new not in taken:
                mapping[name] = new
                taken.add(new)
                break
    return mapping


def rename_locals(source: str, pool: Sequence[str], rng: random.Random, share: float = 0.7,
                  names: Iterable[str] | None = None) -> str:
    """`source` with about `share` of its function-local names renamed (see `draw_renames`)."""
    mapping = draw_renames(source, pool, rng, share, names)
    return apply_renames(source, mapping) if mapping else source


def _words(text: str) -> Iterable[str]:
    """Identifier-like words of `text` (a superset of its NAME tokens: strings and comments included)."""
    return _WORD.findall(text)


@dataclass(frozen=True)
class Renaming:
    """The augmentation as an epoch builder uses it: which files of an epoch get renamed, how much, from what."""

    pool: tuple[str, ...]
    rate: float = 0.5  # share of the files of each epoch whose copy is renamed
    share: float = 0.7  # share of a renamed file's renamable names that change
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # path -> its renamable names (found once)

    @classmethod
    def for_corpus(cls, files: Sequence[SourceFile], rate: float, size: int = 3000) -> Renaming:
        """Each file's renamable names, found once rather than every epoch, and the `size` most common of them
        across the corpus as the pool of realistic replacements."""
        names = {f.path: tuple(renamable_names(f.text)) for f in files}
        counts = Counter(name for found in names.values() for name in found)
        return cls(tuple(name for name, _ in counts.most_common(size)), rate, names=names)

    def apply(self, f: SourceFile, rng: random.Random) -> str:
        """This epoch's copy of `f`: renamed with probability `rate`."""
        if rng.random() >= self.rate:
            return f.text
        return rename_locals(f.text, self.pool, rng, self.share, self.names.get(f.path))
