"""Language ids and file extensions -> tree-sitter grammars (tree-sitter-language-pack 0.13.0), comment syntax."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import PurePath

from tree_sitter import Language, Parser


@dataclass(frozen=True)
class LanguageInfo:
    """One supported grammar: its pack name, the LSP ids and extensions that select it, its comment syntax."""

    grammar: str  # name passed to tree_sitter_language_pack.get_language
    lsp_ids: tuple[str, ...]
    extensions: tuple[str, ...]  # lower-case, with the dot
    line_comment: str | None
    block_comment: tuple[str, str] | None = None
    filenames: tuple[str, ...] = ()  # exact file names (Makefile-like), lower-case


LANGUAGES: tuple[LanguageInfo, ...] = (
    LanguageInfo("python", ("python",), (".py", ".pyi", ".pyw"), "#"),
    LanguageInfo("javascript", ("javascript", "javascriptreact", "jsx"), (".js", ".mjs", ".cjs", ".jsx"), "//",
                 ("/*", "*/")),
    LanguageInfo("typescript", ("typescript",), (".ts", ".mts", ".cts"), "//", ("/*", "*/")),
    LanguageInfo("tsx", ("typescriptreact", "tsx"), (".tsx",), "//", ("/*", "*/")),
    LanguageInfo("go", ("go",), (".go",), "//", ("/*", "*/")),
    LanguageInfo("rust", ("rust",), (".rs",), "//", ("/*", "*/")),
    LanguageInfo("java", ("java",), (".java",), "//", ("/*", "*/")),
    LanguageInfo("c", ("c",), (".c", ".h"), "//", ("/*", "*/")),
    LanguageInfo("cpp", ("cpp", "c++", "cuda-cpp"), (".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++",
                                                      ".ipp", ".cu"), "//", ("/*", "*/")),
    LanguageInfo("csharp", ("csharp", "c#", "c_sharp"), (".cs", ".csx"), "//", ("/*", "*/")),
    LanguageInfo("ruby", ("ruby",), (".rb", ".rake", ".gemspec"), "#", None, ("rakefile", "gemfile")),
    LanguageInfo("php", ("php",), (".php", ".phtml"), "//", ("/*", "*/")),
    LanguageInfo("lua", ("lua",), (".lua",), "--", ("--[[", "]]")),
    LanguageInfo("bash", ("shellscript", "sh", "bash", "zsh", "shell"), (".sh", ".bash", ".zsh", ".ksh"), "#", None,
                 (".bashrc", ".bash_profile", ".zshrc", ".profile")),
)


class LanguageRegistry:
    """Finds languages by LSP id, extension or file name; builds parsers. Unknown input gives None, never an error."""

    def __init__(self, languages: tuple[LanguageInfo, ...] = LANGUAGES) -> None:
        self._by_grammar = {info.grammar: info for info in languages}
        self._by_id = {lsp_id: info.grammar for info in languages for lsp_id in (info.grammar, *info.lsp_ids)}
        self._by_ext = {ext: info.grammar for info in languages for ext in info.extensions}
        self._by_name = {name: info.grammar for info in languages for name in info.filenames}
        self._languages: dict[str, Language | None] = {}  # grammar -> loaded Language (None: failed to load)

    def detect(self, language_id: str | None = None, path: str | PurePath | None = None) -> str | None:
        """Grammar name for an LSP language id (first) or a file path's extension; None = plain text."""
        if language_id:
            grammar = self._by_id.get(language_id.strip().lower())
            if grammar is not None:
                return grammar if self.language(grammar) is not None else None
        if path is not None:
            name = PurePath(str(path)).name.lower()
            grammar = self._by_name.get(name) or self._by_ext.get(PurePath(name).suffix)
            if grammar is not None:
                return grammar if self.language(grammar) is not None else None
        return None

    def info(self, grammar: str | None) -> LanguageInfo | None:
        """The LanguageInfo of a grammar name, None for plain text."""
        return self._by_grammar.get(grammar) if grammar else None

    def line_comment(self, grammar: str | None) -> str | None:
        """The line-comment prefix of a grammar ("#", "//", "--"), None when unknown."""
        info = self.info(grammar)
        return info.line_comment if info else None

    def language(self, grammar: str) -> Language | None:
        """The tree-sitter Language of a grammar, loaded once; None if the pack cannot load it."""
        if grammar not in self._languages:
            try:
                from tree_sitter_language_pack import get_language

                self._languages[grammar] = get_language(grammar)  # type: ignore[arg-type]
            except Exception:  # a missing or broken grammar degrades to plain text
                self._languages[grammar] = None
        return self._languages[grammar]

    def parser(self, grammar: str | None) -> Parser | None:
        """A new tree-sitter Parser for a grammar (parsers are not thread-safe: one per user), None for plain text."""
        language = self.language(grammar) if grammar else None
        return Parser(language) if language is not None else None

    def language_id(self, path: str | PurePath) -> str:
        """The LSP language id an editor would give a file ("plaintext" when unknown)."""
        info = self.info(self.detect(None, path))
        return info.lsp_ids[0] if info else "plaintext"

    @property
    def grammars(self) -> list[str]:
        """All supported grammar names."""
        return list(self._by_grammar)


@functools.cache
def default_registry() -> LanguageRegistry:
    """The shared registry of the built-in languages (immutable tables plus an idempotent cache of loaded grammars)."""
    return LanguageRegistry()


def detect_language(language_id: str | None = None, path: str | PurePath | None = None) -> str | None:
    """Grammar name for an LSP language id or a path; None = plain text (never raises)."""
    return default_registry().detect(language_id, path)


def language_id_for_path(path: str | PurePath) -> str:
    """The LSP language id for a file path ("python", "typescriptreact", "shellscript", ...; "plaintext" if unknown)."""
    return default_registry().language_id(path)


def comment_prefix(grammar: str | None) -> str | None:
    """Line-comment prefix of a grammar, None when unknown or plain text."""
    return default_registry().line_comment(grammar)
