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
from lsp_copilot.training.fim import DEFINED_NAME

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


_NAME_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def name_words(name: str) -> list[str]:
    """`_parse_header_value` -> [parse, header, value]; `HeaderParser` -> [header, parser] (lower case)."""
    return [w.lower() for w in _NAME_PARTS.findall(name)]


@dataclass(frozen=True)
class CalleeRenaming:
    """Cross-file examples whose shown definitions get new names, the same in the context and in the calling chunk.

    A model that has memorised the corpus knows every stdlib function's name and never needs the context to call it;
    on a workspace it has not seen, the context is the only place the name is written. Renaming a called definition
    to a fresh but plausible name (words of the corpus' own definition names, same style and word count) makes the
    context block the only source of the name, so the examples teach copying it from there.
    """

    words: tuple[str, ...]
    rate: float = 0.8  # share of context-carrying examples whose called definitions are renamed

    @classmethod
    def for_corpus(cls, files: Sequence[SourceFile], rate: float, size: int = 2000) -> CalleeRenaming:
        """The `size` most common words (3 letters or more) of the `def`/`class` names of the corpus' non-test files
        as the material for new names."""
        counts = Counter(w for f in files if "test" not in f.path for name in DEFINED_NAME.findall(f.text)
                         for w in name_words(name) if len(w) > 2 and not w.isdigit())
        return cls(tuple(w for w, _ in counts.most_common(size)), rate)

    def fresh_name(self, name: str, rng: random.Random, taken: set[str]) -> str:
        """A new name in `name`'s style (leading underscores, CamelCase or snake_case, its number of words)."""
        stem = name.lstrip("_")
        lead = name[: len(name) - len(stem)]
        n_words = min(3, max(1, len(name_words(stem))))
        for _ in range(20):
            words = rng.sample(self.words, n_words)
            new = lead + ("".join(w.capitalize() for w in words) if stem[:1].isupper() else "_".join(words))
            if new not in taken and new not in _RESERVED:
                return new
        return name  # the pool is exhausted for this example: keep the original

    def apply(self, chunk: str, context: list[tuple[str, str]], rng: random.Random
              ) -> tuple[str, list[tuple[str, str]]]:
        """(chunk, context), renamed with probability `rate`: every name the context defines that the chunk uses."""
        if rng.random() >= self.rate:
            return chunk, context
        used = set(_WORD.findall(chunk))
        names = sorted({n for _, text in context for n in DEFINED_NAME.findall(text)} & used - _RESERVED)
        if not names:
            return chunk, context
        taken = used | {w for _, text in context for w in _WORD.findall(text)}
        mapping: dict[str, str] = {}
        for name in names:
            mapping[name] = self.fresh_name(name, rng, taken)
            taken.add(mapping[name])
        pattern = re.compile(rf"\b(?:{'|'.join(map(re.escape, names))})\b")

        def rename(text: str) -> str:
            return pattern.sub(lambda m: mapping[m.group(0)], text)

        return rename(chunk), [(path, rename(text)) for path, text in context]
