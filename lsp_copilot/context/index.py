"""Workspace index: definitions of every source file under the workspace roots, built in a background thread.

It honours .gitignore files (nested, with negation, via pathspec), skips large, binary and secret-looking files and
never reads outside the roots: every path is resolved and checked, and symlinked directories are not followed.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from lsp_copilot.context.settings import ContextSettings
from lsp_copilot.context.symbols import Definition, ModuleNames, SymbolExtractor, reachable_names
from lsp_copilot.languages import LanguageRegistry

log = logging.getLogger(__name__)


@dataclass
class IndexStats:
    """What the last build did (for `lsp-copilot context` and the logs)."""

    files: int = 0
    definitions: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    seconds: float = 0.0
    done: bool = False

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


class IgnoreRules:
    """Which paths under the roots the index may read: .gitignore files, skipped directories, secret-looking names."""

    def __init__(self, roots: list[Path], settings: ContextSettings) -> None:
        self.roots = roots
        self._settings = settings
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}  # directory -> its .gitignore, parsed
        self._extra = pathspec.GitIgnoreSpec.from_lines(settings.extra_ignore) if settings.extra_ignore else None
        self._lock = threading.Lock()

    def root_of(self, path: Path) -> Path | None:
        """The root that contains the (already resolved) path, None when it is outside every root."""
        for root in self.roots:
            if path == root or path.is_relative_to(root):
                return root
        return None

    def is_secret(self, name: str) -> bool:
        lowered = name.lower()
        return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in self._settings.secret_patterns)

    def forget(self, directory: Path) -> None:
        """Drop a cached .gitignore (it changed on disk)."""
        with self._lock:
            self._specs.pop(directory, None)

    def _spec(self, directory: Path) -> pathspec.GitIgnoreSpec | None:
        with self._lock:
            if directory in self._specs:
                return self._specs[directory]
        spec = None
        gitignore = directory / ".gitignore"
        try:
            if gitignore.is_file() and not gitignore.is_symlink() and gitignore.stat().st_size < 1_000_000:
                spec = pathspec.GitIgnoreSpec.from_lines(gitignore.read_text(encoding="utf-8", errors="replace")
                                                         .splitlines())
        except OSError:
            spec = None
        with self._lock:
            self._specs[directory] = spec
        return spec

    def ignored_entry(self, root: Path, path: Path, is_dir: bool) -> bool:
        """Whether one entry is excluded, given that its parent directory is not (the walker's check)."""
        if is_dir and path.name in self._settings.skipped_dirs:
            return True
        if not is_dir and self.is_secret(path.name):
            return True
        # The deepest .gitignore with a matching pattern decides; the last matching pattern within a file wins.
        directory = path.parent
        while True:
            spec = self._spec(directory)
            if spec is not None:
                rel = path.relative_to(directory).as_posix() + ("/" if is_dir else "")
                result = spec.check_file(rel).include
                if result is not None:
                    return bool(result)
            if directory == root:
                break
            directory = directory.parent
        if self._extra is not None:
            rel = path.relative_to(root).as_posix() + ("/" if is_dir else "")
            return bool(self._extra.match_file(rel))
        return False

    def ignored(self, path: Path) -> bool:
        """Whether a resolved path is outside the roots or excluded, itself or through an ancestor directory."""
        root = self.root_of(path)
        if root is None or path == root:
            return root is None
        current = root
        for part in path.relative_to(root).parts[:-1]:
            current = current / part
            if self.ignored_entry(root, current, is_dir=True):
                return True
        return self.ignored_entry(root, path, is_dir=False)


class WorkspaceIndex:
    """name -> definitions across the workspace. Thread-safe; `set_roots` (re)starts the background build."""

    def __init__(self, settings: ContextSettings, registry: LanguageRegistry, extractor: SymbolExtractor) -> None:
        self.settings = settings
        self._registry = registry
        self._extractor = extractor
        self._lock = threading.RLock()
        self._rules = IgnoreRules([], settings)
        self._files: dict[Path, list[Definition]] = {}  # resolved path -> its definitions
        self._by_name: dict[str, dict[Path, list[Definition]]] = {}
        self._by_stem: dict[str, set[Path]] = {}  # a module's name (`module_stem`) -> its files
        self._reachable: dict[Path, ModuleNames | None] = {}  # `reachable_names` of a file (None: unknown)
        self._touched: set[Path] = set()  # updated by update_file during a build: the build must not overwrite
        self._local = threading.local()  # per-thread parsers (tree-sitter parsers are not thread-safe)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._done.set()
        self.stats = IndexStats(done=True)

    # -- public API --------------------------------------------------------------------------------------------------
    @property
    def roots(self) -> list[Path]:
        return list(self._rules.roots)

    def set_roots(self, roots: list[Path], background: bool = True) -> None:
        """Replace the roots, drop the old index and build a new one (in a daemon thread unless background=False)."""
        self.close()
        resolved = []
        for root in roots:
            try:
                resolved.append(Path(root).resolve(strict=True))
            except OSError:
                log.warning("workspace root %s does not exist; not indexed", root)
        with self._lock:
            self._rules = IgnoreRules([r for r in resolved if r.is_dir()], self.settings)
            self._files.clear()
            self._by_name.clear()
            self._by_stem.clear()
            self._reachable.clear()
            self._touched.clear()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self.stats = IndexStats()
        if not self.settings.enable_index or not self._rules.roots:
            self.stats.done = True
            self._done.set()
            return
        if background:
            self._thread = threading.Thread(target=self._build, args=(self._cancel, self._done, self.stats),
                                            name="lsp-copilot-index", daemon=True)
            self._thread.start()
        else:
            self._build(self._cancel, self._done, self.stats)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current build is finished; True when it is."""
        return self._done.wait(timeout)

    def close(self) -> None:
        """Stop a running build (it ends after the file it is reading)."""
        self._cancel.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None

    def update_file(self, path: Path, text: str | None) -> None:
        """Re-index one file from the given text (None = deleted). Paths outside the roots or excluded are ignored."""
        resolved = self._resolve(path)
        if resolved is None:
            return
        if resolved.name == ".gitignore":
            self._rules.forget(resolved.parent)
        with self._lock:
            self._touched.add(resolved)
        if text is None or self._rules.ignored(resolved) or len(text.encode("utf-8", "replace")) > \
                self.settings.index_max_file_bytes or "\x00" in text[:8192]:
            self._store(resolved, [])
            return
        self._store(resolved, *self._symbols_of(resolved, text))

    def refresh_file(self, path: Path) -> None:
        """Re-read one file from disk (a watched-file change), with every check of the initial build."""
        resolved = self._resolve(path)
        if resolved is None:
            return
        if resolved.name == ".gitignore":
            self._rules.forget(resolved.parent)
        text = self._read(resolved, IndexStats()) if resolved.is_file() and not self._rules.ignored(resolved) else None
        self.update_file(resolved, text)

    def lookup(self, name: str) -> list[Definition]:
        """Definitions of `name` across the indexed files (any order)."""
        with self._lock:
            per_path = self._by_name.get(name)
            return [d for defs in per_path.values() for d in defs] if per_path else []

    def definitions_in_module(self, stem: str) -> list[Definition]:
        """The definitions of the indexed files named `stem` (`errors` -> errors.py, errors.ts, ...), in file order."""
        with self._lock:
            return [d for path in sorted(self._by_stem.get(stem, ())) for d in self._files.get(path, [])]

    def relative(self, path: Path) -> str:
        """The path relative to its workspace root (posix), or the path itself when outside every root."""
        try:
            resolved = path.resolve()
        except OSError:
            return path.as_posix()
        root = self._rules.root_of(resolved)
        return resolved.relative_to(root).as_posix() if root is not None else path.as_posix()

    def contains(self, path: Path) -> bool:
        with self._lock:
            return path in self._files

    @property
    def file_count(self) -> int:
        with self._lock:
            return len(self._files)

    # -- building ----------------------------------------------------------------------------------------------------
    def _resolve(self, path: Path) -> Path | None:
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError):
            return None
        return resolved if self._rules.root_of(resolved) is not None else None

    def _build(self, cancel: threading.Event, done: threading.Event, stats: IndexStats) -> None:
        start = time.perf_counter()
        total_bytes = 0
        seen: set[Path] = set()
        try:
            for path in self._walk(cancel, stats):
                if path in seen:
                    continue
                seen.add(path)
                if stats.files >= self.settings.index_max_files or total_bytes >= self.settings.index_max_total_bytes:
                    stats.skip("index limit")
                    break
                text = self._read(path, stats)
                if text is None:
                    continue
                defs, reachable = self._symbols_of(path, text)
                with self._lock:
                    if cancel.is_set():
                        return
                    if path in self._touched:  # a newer text arrived through update_file
                        continue
                    self._store(path, defs, reachable)
                stats.files += 1
                stats.definitions += len(defs)
                total_bytes += len(text)
                time.sleep(0)  # let request threads run between files
        except Exception:  # the index is best-effort: a failure leaves what was built
            log.exception("workspace index build failed")
        finally:
            stats.seconds = time.perf_counter() - start
            stats.done = True
            done.set()
            log.info("workspace index: %d files, %d definitions in %.1fs (skipped %s)", stats.files,
                     stats.definitions, stats.seconds, stats.skipped)

    def _walk(self, cancel: threading.Event, stats: IndexStats) -> Iterator[Path]:
        """Source files under the roots, depth-first, never following symlinked directories."""
        for root in self._rules.roots:
            stack = [root]
            while stack and not cancel.is_set():
                directory = stack.pop()
                try:
                    entries = sorted(os.scandir(directory), key=lambda e: e.name)
                except OSError:
                    continue
                for entry in entries:
                    path = Path(entry.path)
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if not self._rules.ignored_entry(root, path, is_dir=True):
                                stack.append(path)
                            continue
                        if entry.is_symlink():
                            target = path.resolve()
                            if self._rules.root_of(target) is None:
                                stats.skip("symlink outside workspace")
                                continue
                            if self._rules.ignored(target):
                                stats.skip("ignored")
                                continue
                            path = target  # indexed once, under the file's own path
                        elif not entry.is_file(follow_symlinks=False):
                            continue
                    except OSError:
                        continue
                    if self._registry.detect(None, path) is None:
                        continue
                    if self._rules.ignored_entry(root, path, is_dir=False):
                        stats.skip("secret" if self._rules.is_secret(path.name) else "ignored")
                        continue
                    yield path

    def _read(self, path: Path, stats: IndexStats) -> str | None:
        """The text of a file, or None (counted in stats) when it is too large, binary or unreadable."""
        try:
            real = path.resolve(strict=True)
            if self._rules.root_of(real) is None:
                stats.skip("outside workspace")
                return None
            if real.stat().st_size > self.settings.index_max_file_bytes:
                stats.skip("too large")
                return None
            data = real.read_bytes()
        except OSError:
            stats.skip("unreadable")
            return None
        if b"\x00" in data[:8192]:
            stats.skip("binary")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            stats.skip("binary")
            return None

    def _symbols_of(self, path: Path, text: str) -> tuple[list[Definition], ModuleNames | None]:
        """A file's definitions and every name `module.` reaches in it (None when that cannot be known)."""
        grammar = self._registry.detect(None, path)
        if grammar is None:
            return [], None
        parsers = self._local.__dict__.setdefault("parsers", {})
        if grammar not in parsers:
            parsers[grammar] = self._registry.parser(grammar)
        parser = parsers[grammar]
        if parser is None:
            return [], None
        data = text.encode("utf-8", "replace")
        tree = parser.parse(data)
        defs = self._extractor.definitions(tree, data, grammar, self.relative(path))
        imports = self._extractor.imports(tree, text, grammar)
        return defs, reachable_names(defs, text, imports, grammar, is_package=path.stem == "__init__")

    def exported_names(self, stem: str) -> ModuleNames | None:
        """What `module.` reaches in the indexed files named `stem` (`ModuleNames`: their interface, and every name
        they bind); None when a file's imports cannot be known or no file has that name."""
        with self._lock:
            paths = sorted(self._by_stem.get(stem, ()))
            names = ModuleNames(frozenset(), frozenset())
            for path in paths:
                reachable = self._reachable.get(path)
                if reachable is None:
                    return None
                names = names.union(reachable)
        return names if paths else None

    def _store(self, path: Path, defs: list[Definition], reachable: ModuleNames | None = None) -> None:
        with self._lock:
            self._reachable.pop(path, None)
            for old in self._files.pop(path, []):
                per_path = self._by_name.get(old.name)
                if per_path is not None:
                    per_path.pop(path, None)
                    if not per_path:
                        del self._by_name[old.name]
            same_stem = self._by_stem.get(module_stem(path))
            if same_stem is not None:
                same_stem.discard(path)
                if not same_stem:
                    del self._by_stem[module_stem(path)]
            if not defs:
                return
            self._files[path] = defs
            self._reachable[path] = reachable
            self._by_stem.setdefault(module_stem(path), set()).add(path)
            for d in defs:
                self._by_name.setdefault(d.name, {}).setdefault(path, []).append(d)


def module_stem(path: Path) -> str:
    """The name a file is imported by: its name without extension, or its folder's for a package's `__init__`/`index`
    file (`json/__init__.py` -> `json`, `utils/index.ts` -> `utils`)."""
    return path.parent.name if path.stem in ("__init__", "index") and path.parent.name else path.stem
