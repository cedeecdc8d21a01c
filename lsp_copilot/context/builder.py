"""ContextBuilder: windows, scope, single/multi-line, imports, definitions and snippets fitted to one token budget."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lsp_copilot.context.index import WorkspaceIndex, module_stem
from lsp_copilot.context.scope import enclosing_scope, is_multiline, line_indent
from lsp_copilot.context.settings import ContextSettings
from lsp_copilot.context.snippets import SnippetRetriever
from lsp_copilot.context.symbols import Definition, ModuleNames, SymbolExtractor, reachable_names
from lsp_copilot.context.usage import MEMBER_ACCESS, member_uses
from lsp_copilot.context.windows import LineTokenCounter, cut_prefix, cut_suffix
from lsp_copilot.documents import Document, DocumentStore, PositionError
from lsp_copilot.languages import LanguageRegistry, default_registry

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# A module imported under another name: Python `import a.b as c` / `from a import b as c`, JavaScript
# `import * as c from './a/b'`; group 1 or 3 is the module's path, group 2 or 4 the local name.
_MODULE_ALIAS = re.compile(r"([\w.]+)\s+as\s+([A-Za-z_]\w*)|\*\s*as\s+([A-Za-z_$][\w$]*)\s+from\s+['\"]([^'\"]+)['\"]")
# Words that are never worth a definition lookup (keywords and builtins common to the supported languages).
_STOPWORDS = frozenset({
    "and", "as", "assert", "async", "await", "break", "case", "catch", "class", "const", "continue", "def",
    "default", "del", "do", "elif", "else", "end", "enum", "except", "export", "extends", "false", "final",
    "finally", "fn", "for", "from", "func", "function", "go", "if", "impl", "implements", "import", "in",
    "instanceof", "interface", "is", "lambda", "let", "local", "loop", "match", "mod", "module", "mut", "new", "nil",
    "none", "not", "null", "or", "package", "pass", "private", "protected", "pub", "public", "raise", "return",
    "self", "static", "struct", "super", "switch", "then", "this", "throw", "throws", "trait", "true", "try", "type",
    "typeof", "undefined", "unless", "until", "use", "using", "var", "void", "when", "where", "while", "with",
    "yield", "int", "str", "float", "bool", "dict", "list", "set", "tuple", "len", "print", "range", "string",
    "number", "boolean", "any", "object", "char", "long", "short", "double", "byte", "unsigned", "signed", "sizeof",
    "auto", "echo", "fi", "done", "esac", "begin", "rescue", "ensure", "require", "None", "True", "False", "Self",
})


# Grammars whose definitions are useful to each other (a .ts file calls .js code, a .cpp file includes .h headers).
_FAMILIES = {"javascript": "js", "typescript": "js", "tsx": "js", "c": "c", "cpp": "c"}


@dataclass
class ContextPart:
    """One piece of cross-file context, labelled with its source file."""

    kind: str  # "definitions" | "snippet" | "imports"
    path: str  # source file, relative to the workspace root when inside it
    text: str
    tokens: int


@dataclass
class CompletionContext:
    """What the model sees for one cursor position."""

    prefix: str
    suffix: str
    parts: list[ContextPart]  # highest priority first, fitted to the budget
    path: str  # the current file (relative path)
    language: str | None
    multiline: bool
    indent: str
    scope_kind: str | None
    prefix_tokens: int = 0
    suffix_tokens: int = 0
    budget_tokens: int = 0
    scope_name: str | None = None  # the enclosing function/class name, when known
    offset: int = 0  # the cursor's str offset in the document
    notes: list[str] = field(default_factory=list)  # why a part is missing (no tree, index still building, ...)
    # The cursor follows `module.` of a workspace module: the names the answer may finish (the module's interface,
    # `symbols.ModuleNames.for_typed`; from open documents and the index; empty when unknown), what is typed of the
    # member, and how often the file already writes each of those names after the same qualifier.
    members: list[str] = field(default_factory=list)
    member_typed: str = ""
    member_uses: dict[str, int] = field(default_factory=dict)  # how the file already uses them (`usage.member_uses`)

    @property
    def parts_tokens(self) -> int:
        return sum(p.tokens for p in self.parts)


class ContextBuilder:
    """Builds the CompletionContext of a cursor; owns the workspace index and the per-document caches."""

    def __init__(self, settings: ContextSettings, count_tokens: Callable[[str], int],
                 registry: LanguageRegistry | None = None) -> None:
        self._settings = settings
        self.registry = registry or default_registry()
        self.counter = LineTokenCounter(count_tokens)
        self.extractor = SymbolExtractor(self.registry, max_definition_lines=settings.max_definition_lines)
        self.index = WorkspaceIndex(settings, self.registry, self.extractor)
        self.snippets = SnippetRetriever(settings.snippet_window_lines, settings.snippet_stride_lines)
        self._open_defs: dict[str, tuple[int, list[Definition]]] = {}  # uri -> (version, definitions)
        self._open_reachable: dict[str, tuple[int, ModuleNames | None]] = {}  # uri -> (version, `reachable_names`)
        self._open_by_name: tuple[object, dict[str, list[Definition]]] = ((), {})  # (uris+versions, name -> defs)
        self._usage_patterns: dict[str, re.Pattern[str] | None] = {}  # import block -> its usage regex
        self._relative: dict[str, str] = {}  # uri -> workspace-relative path (resolving a path costs syscalls)

    @property
    def settings(self) -> ContextSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: ContextSettings) -> None:
        """New settings apply to the next build; index limits apply from the next `set_workspace`."""
        self._settings = settings
        self.index.settings = settings
        if self.extractor.max_definition_lines != settings.max_definition_lines:
            self.extractor = SymbolExtractor(self.registry, max_definition_lines=settings.max_definition_lines)
            self._open_defs.clear()
            self._open_reachable.clear()
        if (self.snippets.window_lines, self.snippets.stride_lines) != (settings.snippet_window_lines,
                                                                        settings.snippet_stride_lines):
            self.snippets = SnippetRetriever(settings.snippet_window_lines, settings.snippet_stride_lines)

    @property
    def count_tokens(self) -> Callable[[str], int]:
        return self.counter.count

    @count_tokens.setter
    def count_tokens(self, count_tokens: Callable[[str], int]) -> None:
        """Swap the token counter (the model's tokenizer once it is loaded); cached line counts are dropped."""
        self.counter = LineTokenCounter(count_tokens)

    # -- workspace ---------------------------------------------------------------------------------------------------
    def set_workspace(self, roots: list[Path], background: bool = True) -> None:
        """Set the workspace folders and (re)start the background index."""
        self._relative.clear()
        self.index.set_roots(roots, background=background)

    def wait_until_indexed(self, timeout: float | None = None) -> bool:
        """Block until the background index is built (True) or the timeout passes (False)."""
        return self.index.wait(timeout)

    def update_file(self, path: Path, text: str | None) -> None:
        """A file changed or was saved (its text) or deleted (None)."""
        self.index.update_file(path, text)

    def refresh_file(self, path: Path) -> None:
        """A watched file changed on disk: re-read it (only inside the workspace, with the index's checks)."""
        self.index.refresh_file(path)

    def close(self) -> None:
        self.index.close()

    def relative_path(self, doc: Document) -> str:
        """The document's path relative to its workspace root (cached per URI until the workspace changes)."""
        if doc.uri not in self._relative:
            if len(self._relative) >= 10_000:  # bounded: a long session opens many documents
                self._relative.clear()
            self._relative[doc.uri] = self.index.relative(doc.path) if doc.path is not None else doc.uri
        return self._relative[doc.uri]

    # -- the context -------------------------------------------------------------------------------------------------
    def build(self, doc: Document, offset: int, store: DocumentStore) -> CompletionContext:
        """The context at a str offset of `doc`; other open documents of `store` feed definitions and snippets."""
        if not 0 <= offset <= len(doc.text):
            raise PositionError(f"offset {offset} is outside the document (length {len(doc.text)}) of {doc.uri}")
        s = self.settings
        if not doc.fresh and not doc.wait_fresh(s.tree_wait_ms / 1000):
            stale_note = "syntax tree still being reparsed: scope from the previous tree, shifted by the edits"
        else:
            stale_note = ""
        text = doc.text
        line_start = text.rfind("\n", 0, offset) + 1
        line_end = text.find("\n", offset)
        line_end = len(text) if line_end < 0 else line_end
        line_before, line_after = text[line_start:offset], text[offset:line_end].rstrip("\r")
        prev_line = _previous_nonempty_line(text, line_start)
        scope_kind, scope_node = self._scope(doc, offset, line_start, line_before, line_after)
        ctx = CompletionContext(
            prefix="", suffix="", parts=[], path=self.relative_path(doc), language=doc.language,
            multiline=is_multiline(line_before, line_after, prev_line, doc.language), indent=line_indent(line_before),
            scope_kind=scope_kind, budget_tokens=s.budget_tokens, offset=offset,
            scope_name=_node_name(scope_node),
        )
        if stale_note:
            ctx.notes.append(stale_note)
        elif doc.language is not None and doc.tree is None:
            ctx.notes.append("no syntax tree (document too large or binary): plain windows only")
        if s.enable_index and not self.index.wait(0):
            ctx.notes.append("workspace index still building")

        candidates = self._candidate_parts(doc, ctx, text, line_start, offset, store)
        parts_budget = int(s.budget_tokens * s.cross_file_share)
        ctx.parts = self._fit_parts(candidates, parts_budget)
        # The windows share what the parts left; what the suffix does not use goes to the prefix.
        remaining = s.budget_tokens - sum(self._part_cost(p) for p in ctx.parts)
        suffix_budget = remaining - int(remaining * s.prefix_share)
        ctx.suffix, ctx.suffix_tokens = cut_suffix(text[offset:], suffix_budget, self.counter, s.exact_token_counts)
        prefix_budget = remaining - ctx.suffix_tokens
        ctx.prefix, ctx.prefix_tokens = cut_prefix(text[:offset], prefix_budget, self.counter, s.exact_token_counts)
        if len(ctx.prefix) == offset:  # the prefix reaches the top of the file: its imports are already in it
            ctx.parts = [p for p in ctx.parts if p.kind != "imports"]
        return ctx

    @staticmethod
    def _scope(doc: Document, offset: int, line_start: int, line_before: str,
               line_after: str) -> tuple[str | None, Any]:
        """The enclosing scope; on a blank line of an indentation-based language, decided by the indentation."""
        if doc.tree is None:
            return None, None
        if doc.language == "python" and not (line_before + line_after).strip():
            end = line_start - 1  # the end of the previous non-blank line: a body without statements ends there
            while end > 0 and not doc.text[doc.text.rfind("\n", 0, end) + 1:end].strip():
                end = doc.text.rfind("\n", 0, end)
            if end <= 0:
                return None, None
            return enclosing_scope(doc.tree, doc.byte_at(end) - 1, max_column=len(line_before.expandtabs(8)))
        return enclosing_scope(doc.tree, doc.byte_at(offset))

    def _part_cost(self, part: ContextPart) -> int:
        """Tokens a part takes in the prompt: its text plus a label line (path and separator)."""
        return part.tokens + self.counter.line(part.path) + 2

    def _candidate_parts(self, doc: Document, ctx: CompletionContext, text: str, line_start: int,
                         offset: int, store: DocumentStore) -> list[ContextPart]:
        """All cross-file parts, highest priority first (definitions, imports, snippets), not yet fitted."""
        s = self.settings
        parts: list[ContextPart] = []
        imports = self.extractor.imports(doc.tree, text, doc.language) if s.enable_imports else ""
        if s.enable_definitions:
            names = self.definition_candidates(text, line_start, offset, imports)
            member = self.member_access(text[line_start:offset], imports)
            module_defs = self.module_definitions(doc, store, member[0]) if member is not None else []
            if member is not None:
                ctx.members = self.exported_names(doc, store, *member)
                ctx.member_typed = member[1]
                ctx.member_uses = member_uses(text, line_start, offset, ctx.members) if ctx.members else {}
            parts.extend(self._definition_parts(doc, names, imports, store, member, module_defs, ctx.member_uses))
        if imports:
            parts.append(ContextPart("imports", ctx.path, imports, self.counter.line(imports)))
        if s.enable_snippets:
            query_start = _line_start_before(text, line_start, s.snippet_query_lines)
            local_end = text.find("\n", offset)
            local = text[query_start: len(text) if local_end < 0 else local_end]
            parts.extend(self._snippet_parts(doc, text[query_start:offset], local, store))
        return parts

    # -- definitions -------------------------------------------------------------------------------------------------
    def identifiers_near(self, near: str) -> list[str]:
        """Identifiers used near the cursor, nearest first, without keywords, duplicates or the partial word."""
        words = _IDENT.findall(near)
        if words and near and (near[-1].isalnum() or near[-1] in "_$"):
            words = words[:-1]  # the word being typed is not a reference yet
        return _references(reversed(words))

    def identifiers_after(self, after: str) -> list[str]:
        """Identifiers used just below the cursor, nearest first (the code after the hole refers to its names too)."""
        words = _IDENT.findall(after)
        if words and after and (after[0].isalnum() or after[0] in "_$"):
            words = words[1:]  # the rest of the word at the cursor is not a reference yet
        return _references(words)

    def imported_usage(self, window: str, imports: str) -> list[str]:
        """Names the file imports, or reaches through an imported module (`errors.ParseError`), most used first.

        This is what the code around the cursor calls into other files even when the last lines do not mention it:
        a line that raises `errors.HeaderParseError` is typical of a file that does so thirty times.
        """
        pattern = self._usage_pattern(imports)
        if pattern is None:
            return []
        uses: Counter[str] = Counter()
        owners: set[str] = set()  # imported names used as modules (`errors.`): what they hold counts, not they
        for name, attr in pattern.findall(window):
            if attr:
                if attr not in _STOPWORDS:
                    uses[attr] += 1
                owners.add(name)
            else:
                uses[name] += 1
        return [name for name, _ in uses.most_common() if name not in owners]

    def _usage_pattern(self, imports: str) -> re.Pattern[str] | None:
        """One regex per import block: an imported name, optionally followed by `.member` (cached per block)."""
        if imports not in self._usage_patterns:
            names = sorted((set(_IDENT.findall(imports)) - _STOPWORDS) - {"from", "import", "as", "require"},
                           key=len, reverse=True)
            names = [n for n in names if len(n) > 1]
            if len(self._usage_patterns) >= 64:
                self._usage_patterns.clear()
            self._usage_patterns[imports] = re.compile(
                rf"(?<![\w$.])({'|'.join(map(re.escape, names))})(?![\w$])"
                rf"(?:\s*(?:\.|::|->)\s*([A-Za-z_$][\w$]*))?") if names else None
        return self._usage_patterns[imports]

    @staticmethod
    def member_access(line_before: str, imports: str) -> tuple[str, str] | None:
        """(module's file stem, typed part of the member) when the cursor follows `module.` (or `module::`,
        `module->`) and the file imports that module (perhaps under another name): the user is choosing one of its
        definitions right now."""
        m = MEMBER_ACCESS.search(line_before)
        if m is None:
            return None
        first = (m.group(1) or m.group(2)).split(".", 1)[0]
        if first not in set(_IDENT.findall(imports)) - _STOPWORDS:
            return None
        module = m.group(2) if m.group(1) else module_aliases(imports).get(m.group(2), m.group(2))
        return module, m.group(3) or ""

    def definition_candidates(self, text: str, line_start: int, offset: int,
                              imports: str) -> tuple[list[str], list[str]]:
        """(names used around the cursor: above it, then just below it; imported names most used in the lines
        around it). Each window is bounded in lines, so a keystroke's cost is too."""
        s = self.settings
        near = text[_line_start_before(text, line_start, s.definition_lookback_lines):offset]
        below_end = _line_end_after(text, offset, s.definition_lookahead_lines)
        names = list(dict.fromkeys([*self.identifiers_near(near), *self.identifiers_after(text[offset:below_end])]))
        usage: list[str] = []
        if s.definition_usage_lines and imports:
            window_start = _line_start_before(text, line_start, s.definition_usage_lines)
            window_end = _line_end_after(text, offset, s.definition_usage_lines)
            usage = self.imported_usage(text[window_start:window_end], imports)
        return names, usage

    def _open_definitions(self, doc: Document) -> list[Definition]:
        """The definitions of an open document, cached per version once its tree is fresh."""
        cached = self._open_defs.get(doc.uri)
        if cached is not None and cached[0] == doc.version:
            return cached[1]
        fresh = doc.fresh or doc.wait_fresh(self.settings.tree_wait_ms / 1000)
        tree = doc.tree
        defs: list[Definition] = []
        if tree is not None and doc.language is not None:
            data = doc.text.encode("utf-8", "surrogatepass")
            defs = self.extractor.definitions(tree, data, doc.language, self.relative_path(doc))
        if fresh:  # a shifted old tree may miss definitions: computed again next time
            self._open_defs[doc.uri] = (doc.version, defs)
        return defs

    def _definitions_by_name(self, store: DocumentStore, doc: Document) -> tuple[dict[str, list[Definition]], set[str]]:
        """Definitions of the other open documents by name (rebuilt only when one of them changed), and their paths."""
        open_docs = [d for d in store if d.uri != doc.uri]
        self._open_defs = {u: v for u, v in self._open_defs.items() if u in {d.uri for d in open_docs}}
        self._open_reachable = {u: v for u, v in self._open_reachable.items() if u in {d.uri for d in open_docs}}
        key = tuple((d.uri, d.version, d.fresh) for d in open_docs)
        if self._open_by_name[0] != key:
            by_name: dict[str, list[Definition]] = {}
            for other in open_docs:
                for d in self._open_definitions(other):
                    by_name.setdefault(d.name, []).append(d)
            self._open_by_name = (key, by_name)
        return self._open_by_name[1], {self.relative_path(other) for other in open_docs}

    def module_definitions(self, doc: Document, store: DocumentStore, module: str) -> list[Definition]:
        """The definitions of the workspace files named `module` (open documents first, then the index), in file
        order, the current file and other languages left out."""
        found = [d for other in store
                 if other.uri != doc.uri and module_stem(Path(self.relative_path(other))) == module
                 for d in self._open_definitions(other)]
        open_paths = {self.relative_path(other) for other in store if other.uri != doc.uri}
        if self.settings.enable_index:
            found += [d for d in self.index.definitions_in_module(module) if d.path not in open_paths]
        family = _FAMILIES.get(doc.language or "", doc.language)
        current = self.relative_path(doc)
        return [d for d in found if d.path != current and self._family_of(d.path) == family]

    def exported_names(self, doc: Document, store: DocumentStore, module: str, typed: str) -> list[str]:
        """The names the answer after `module.` + `typed` may finish (`ModuleNames.for_typed`: the module's interface,
        or every name it binds when the user is writing another one), from an open document of that name, else from
        the index; [] when that cannot be known (a star import, CommonJS, a language whose exports are not read, a
        module not in the workspace): then no rule keeps the answer to them."""
        for other in store:
            if other.uri != doc.uri and module_stem(Path(self.relative_path(other))) == module:
                cached = self._open_reachable.get(other.uri)
                if cached is not None and cached[0] == other.version:  # once per version of the other document
                    names = cached[1]
                else:
                    imports = self.extractor.imports(other.tree, other.text, other.language)
                    names = reachable_names(self._open_definitions(other), other.text, imports, other.language,
                                            is_package=Path(self.relative_path(other)).stem == "__init__")
                    if other.fresh:  # (a shifted old tree may miss definitions: computed again next time)
                        self._open_reachable[other.uri] = (other.version, names)
                return names.for_typed(typed) if names is not None else []
        found = self.index.exported_names(module) if self.settings.enable_index else None
        return found.for_typed(typed) if found is not None else []

    def _definition_parts(self, doc: Document, candidates: tuple[list[str], list[str]], imports: str,
                          store: DocumentStore, member: tuple[str, str] | None = None,
                          module_defs: list[Definition] | None = None,
                          member_uses: dict[str, int] | None = None) -> list[ContextPart]:
        """Definitions of the candidate names, open documents first, then the index; grouped per file.

        Priority: when the cursor follows `module.`, that module's definitions (those starting with what is typed
        first, then those the file writes most in this context, `member_uses`); then names used around the cursor
        whose definition is in an open document or a file the current file imports; then the imported names most
        used nearby (found only in such files); then the other names used around the cursor (a `.get` or `.value`
        on a local object matches methods anywhere: weak evidence).
        """
        s = self.settings
        by_name, open_paths = self._definitions_by_name(store, doc)
        current = self.relative_path(doc)
        family = _FAMILIES.get(doc.language or "", doc.language)
        import_words = set(_IDENT.findall(imports))

        def related(d: Definition) -> bool:  # (a file whose name the imports mention: `from pkg import errors`)
            return d.path in open_paths or module_stem(Path(d.path)) in import_words

        def lookup(name: str) -> list[Definition]:
            found = list(by_name.get(name, []))
            if s.enable_index:
                found += [d for d in self.index.lookup(name) if d.path not in open_paths]
            # Same file excluded; other languages too (a Lua `add` says nothing about a TypeScript `cart.add`).
            found = [d for d in found if d.path != current and self._family_of(d.path) == family]
            # Related files (open or imported) first, then shorter paths (closer to the root).
            found.sort(key=lambda d: (not related(d), d.path.count("/"), d.path, d.line))
            return found[:2]

        names, usage = candidates
        members: list[list[Definition]] = []
        if member is not None:
            typed = member[1]
            found = module_defs if module_defs is not None else self.module_definitions(doc, store, member[0])
            uses = member_uses or {}
            members = [[d] for d in sorted(found, key=lambda d: (not d.name.startswith(typed), -uses.get(d.name, 0)))]
        strong: list[list[Definition]] = []
        weak: list[list[Definition]] = []
        for name in names:
            found = lookup(name)
            (strong if any(related(d) for d in found) else weak).append(found)
        near = set(names)
        used = [[d for d in lookup(name) if related(d)] for name in usage if name not in near]
        chosen: list[Definition] = []
        for found in [*members, *strong, *used, *weak]:
            for d in found:
                if any(c.contains(d) or c == d for c in chosen):
                    continue  # already shown inside a type
                chosen = [c for c in chosen if not d.contains(c)] + [d]
            if len(chosen) >= s.max_definitions:
                break
        grouped: dict[str, list[Definition]] = {}
        for d in chosen[: s.max_definitions]:
            grouped.setdefault(d.path, []).append(d)
        parts = []
        for path, defs in grouped.items():
            text = "\n\n".join(d.text for d in defs)
            parts.append(ContextPart("definitions", path, text, self.counter.line(text)))
        return parts

    def _family_of(self, path: str) -> str | None:
        grammar = self.registry.detect(None, path)
        return _FAMILIES.get(grammar or "", grammar)

    # -- snippets ----------------------------------------------------------------------------------------------------
    def _snippet_parts(self, doc: Document, query: str, local: str, store: DocumentStore) -> list[ContextPart]:
        s = self.settings
        others = [d for d in store.recently_edited(s.snippet_max_files + 1) if d.uri != doc.uri][: s.snippet_max_files]
        self.snippets.forget({d.uri for d in others})
        candidates = [(d.uri, d.version, self.relative_path(d), d.text) for d in others]
        found = self.snippets.retrieve(query, local, candidates, s.max_snippets, s.snippet_min_similarity,
                                       s.snippet_duplicate_similarity)
        return [ContextPart("snippet", sn.path, sn.text, self.counter.line(sn.text)) for sn in found]

    # -- budget ------------------------------------------------------------------------------------------------------
    def _fit_parts(self, candidates: list[ContextPart], budget: int) -> list[ContextPart]:
        """Parts in priority order while they fit; a part that does not fit is cut at a line boundary or dropped."""
        fitted: list[ContextPart] = []
        used = 0
        for part in candidates:
            cost = self._part_cost(part)
            if used + cost <= budget:
                fitted.append(part)
                used += cost
                continue
            room = budget - used - (cost - part.tokens)  # what is left for this part's text
            if room < 16 or part.kind == "imports":
                continue
            text, _ = cut_suffix(part.text, room, self.counter, exact=True)
            text = text.rstrip("\n")
            cut = ContextPart(part.kind, part.path, text, self.counter.count(text))
            if text.strip() and used + self._part_cost(cut) <= budget:
                fitted.append(cut)
                used += self._part_cost(cut)
        return fitted


def module_aliases(imports: str) -> dict[str, str]:
    """{local name: the module's file stem} for modules imported under another name (`from email import
    _header_value_parser as parser` -> {"parser": "_header_value_parser"}), so `parser.` finds the right file."""
    aliases: dict[str, str] = {}
    for m in _MODULE_ALIAS.finditer(imports):
        if m.group(2):  # a dotted Python module
            aliases[m.group(2)] = m.group(1).rsplit(".", 1)[-1]
        else:  # a JavaScript module path, with or without its extension
            aliases[m.group(3)] = PurePosixPath(m.group(4)).stem
    return aliases


def _references(words: Iterable[str]) -> list[str]:
    """The words worth a definition lookup, first occurrence kept: no duplicates, keywords or one-letter names."""
    return [w for w in dict.fromkeys(words) if len(w) > 1 and w not in _STOPWORDS]


def _previous_nonempty_line(text: str, line_start: int) -> str | None:
    """The nearest non-blank line above the line starting at `line_start`."""
    end = line_start - 1
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if line.strip():
            return line
        end = start - 1
    return None


def _line_start_before(text: str, line_start: int, lines: int) -> int:
    """The start of the line `lines` lines above the one starting at `line_start`."""
    start = line_start
    for _ in range(lines):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    return start


def _line_end_after(text: str, offset: int, lines: int) -> int:
    """The end of the line `lines` lines below the one holding `offset` (0: the end of that line)."""
    end = offset
    for _ in range(lines + 1):
        nxt = text.find("\n", end)
        if nxt < 0:
            return len(text)
        end = nxt + 1
    return end - 1


def _node_name(node: object) -> str | None:
    name = getattr(node, "child_by_field_name", lambda _: None)("name") if node is not None else None
    return name.text.decode("utf-8", "replace") if name is not None and name.text else None
