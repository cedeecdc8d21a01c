"""Cross-file evaluation: lines that call a function or class defined in a sibling module, with and without the index.

Task set (deterministic). The packages held out from training (`training.corpus.HELD_OUT_PACKAGES`: email, json,
xmlrpc, wsgiref, tomllib) are read from the running Python's stdlib. In each module, a *cross-file call* is a call
`f(...)` or `mod.f(...)` where `f` is a top-level `def`/`class` of ANOTHER module of the same package, imported into
this module (`from .m import f`, `from pkg.m import f as g`, `from pkg import m`, `import pkg.m [as m]`; imports inside
functions count too). Every single-line statement (the `humaneval_infill.single_line_statements` rule) containing
such a call is one task: the cursor after the line's indentation, the line removed, exact match on the stripped line.
With `--cursor call` the line is kept up to its first cross-file callee's name (`lp = parser.|quote_string(lp)`), as
CrossCodeEval splits at the first use of a cross-file name, and the answer is the rest of the line.

`--source-root DIR` evaluates other code instead (a user's own repository, or third-party packages no model here was
trained on: `bench/crossfile_third_party.txt`): the packages directly under DIR (`--packages` to choose), read and
derived the same way.

Each package is copied into a temporary workspace (`<tmp>/<package>/...`), and each task is completed twice: with the
workspace index (`CompletionQuery.workspace` set: the completer indexes that folder) and without it (the file alone).
While a task runs, its file in the workspace holds the task's text, so the index never sees the removed line.
"""

from __future__ import annotations

import ast
import difflib
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from lsp_copilot.evaluation.completers import Completer, CompletionQuery, DirectModelCompleter, TimedCompletion, timed
from lsp_copilot.evaluation.humaneval_infill import select, single_line_statements
from lsp_copilot.evaluation.models import EMBEDDED_DIR, make_model_completer
from lsp_copilot.evaluation.report import (
    SystemScore,
    emit,
    exact_match,
    format_table,
    paired,
    score_system,
    write_details,
)
from lsp_copilot.training.corpus import HELD_OUT_PACKAGES, SourceFile, stdlib_root
from lsp_copilot.training.data import CrossFileIndex, module_name

T = TypeVar("T")


@dataclass(frozen=True)
class CrossFileTask:
    """One line of a package module whose answer calls something defined in a sibling module."""

    task_id: str  # "<path>:<line>"
    path: str  # relative to the workspace root, e.g. "email/header.py"
    text: str  # the file with the line's text removed (its indentation and newline kept)
    offset: int  # the cursor: after the line's indentation
    expected: str  # the line, stripped
    callees: tuple[str, ...]  # "module.name" of each cross-file definition the line calls

    def query(self, workspace: Path | None) -> CompletionQuery:
        return CompletionQuery(self.text, self.offset, self.path, workspace)


def top_level_definitions(source: str) -> set[str]:
    """Names of the top-level functions and classes of a module."""
    tree = ast.parse(source)
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _resolve(module: str, level: int, current: str, is_package: bool) -> str:
    """Absolute module name of `from <level dots><module> import ...` inside module `current`."""
    if level == 0:
        return module
    base = current.split(".")
    base = base if is_package else base[:-1]  # a package's `.` is itself, a module's `.` its package
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a chain of names and attributes, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


@dataclass
class _Imports:
    """What a module's imports make visible: local name -> (module, def) and local dotted name -> module."""

    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)


def collect_imports(tree: ast.AST, current: str, is_package: bool, defs: Mapping[str, set[str]]) -> _Imports:
    """Imports of sibling modules' definitions (`defs`: module -> top-level names), anywhere in the module."""
    found = _Imports()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(node.module or "", node.level, current, is_package)
            for alias in node.names:
                local = alias.asname or alias.name
                if source in defs and source != current and alias.name in defs[source]:
                    found.names[local] = (source, alias.name)
                elif f"{source}.{alias.name}" in defs and f"{source}.{alias.name}" != current:
                    found.modules[local] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in defs and alias.name != current:
                    found.modules[alias.asname or alias.name] = alias.name
    return found


def callee_column(call: ast.Call) -> int:
    """Byte column where the called name starts: `f` in `f(...)`, `f` in `mod.f(...)` (after the dot)."""
    func = call.func
    return func.end_col_offset - len(func.attr) if isinstance(func, ast.Attribute) else func.col_offset  # type: ignore[operator]


def cross_file_callees(call: ast.Call, imports: _Imports, defs: Mapping[str, set[str]]) -> str | None:
    """"module.name" if `call` calls a sibling module's top-level definition, else None."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in imports.names:
        module, name = imports.names[func.id]
        return f"{module}.{name}"
    if isinstance(func, ast.Attribute):
        owner_module = imports.modules.get(_dotted(func.value) or "")
        if owner_module is not None and func.attr in defs[owner_module]:
            return f"{owner_module}.{func.attr}"
    return None


def derive_file_tasks(path: str, source: str, defs: Mapping[str, set[str]], cursor: str = "line"
                      ) -> list[CrossFileTask]:
    """The tasks of one module (`path` relative to the workspace root), in line order.

    `cursor`: "line" removes the whole line (the cursor after its indentation); "call" keeps the line up to the
    first cross-file callee's name (`lp = parser.|quote_string(lp)`), CrossCodeEval's split at the first use of a
    cross-file name, so the answer starts with the name that only the other file tells.
    """
    if cursor not in ("line", "call"):
        raise ValueError(f"cursor must be 'line' or 'call', got {cursor!r}")
    current = module_name(path)
    tree = ast.parse(source)
    imports = collect_imports(tree, current, path.endswith("__init__.py"), defs)
    callees: dict[int, set[str]] = {}
    first_column: dict[int, int] = {}  # row -> byte column of its first cross-file callee's name
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno == node.end_lineno:
            callee = cross_file_callees(node, imports, defs)
            if callee is not None:
                callees.setdefault(node.lineno, set()).add(callee)
                first_column[node.lineno] = min(first_column.get(node.lineno, 1 << 30), callee_column(node))
    lines = source.splitlines(keepends=True)
    tasks = []
    for row in single_line_statements(source):
        if row not in callees:
            continue
        line = lines[row - 1]
        body = line.rstrip("\r\n")
        keep = body[: len(body) - len(body.lstrip(" \t"))]  # "line": the indentation stays
        if cursor == "call":
            keep = body.encode("utf-8")[: first_column[row]].decode("utf-8")
        before = "".join(lines[: row - 1]) + keep
        text = before + line[len(body):] + "".join(lines[row:])  # the rest of the line removed, its newline kept
        tasks.append(CrossFileTask(f"{path}:{row}", path, text, len(before), body[len(keep):].strip(),
                                   tuple(sorted(callees[row]))))
    return tasks


def package_sources(package_dir: Path, root: Path) -> dict[str, str]:
    """{path relative to `root`: text} of the package's .py files that decode as UTF-8 and parse."""
    out: dict[str, str] = {}
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
            ast.parse(text)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue
        out[path.relative_to(root).as_posix()] = text
    return out


def derive_package_tasks(sources: Mapping[str, str], cursor: str = "line") -> list[CrossFileTask]:
    """Tasks of every module of one package (`sources`: relative path -> text)."""
    defs = {module_name(p): top_level_definitions(t) for p, t in sources.items()}
    return [t for p, text in sources.items() for t in derive_file_tasks(p, text, defs, cursor)]


def discover_packages(root: Path) -> tuple[str, ...]:
    """The packages directly under `root` (directories holding an `__init__.py`), sorted; an error names the root
    when there is none."""
    if not root.is_dir():
        raise FileNotFoundError(f"source root {root} is not a directory")
    found = tuple(sorted(d.name for d in root.iterdir()
                         if d.is_dir() and d.name.isidentifier() and (d / "__init__.py").is_file()))
    if not found:
        raise FileNotFoundError(f"no Python package (a directory with an __init__.py) directly under {root}")
    return found


def load_tasks(packages: Sequence[str] = HELD_OUT_PACKAGES, root: Path | None = None,
               cursor: str = "line") -> list[CrossFileTask]:
    """All tasks of the packages under `root` (default: the held-out stdlib ones), ordered by path and line."""
    root = root or stdlib_root()
    tasks: list[CrossFileTask] = []
    for pkg in packages:
        if not (root / pkg).is_dir():
            raise FileNotFoundError(f"package {pkg!r} not found under {root}")
        tasks += derive_package_tasks(package_sources(root / pkg, root), cursor)
    return tasks


class Workspace:
    """A temporary copy of the packages; `holding(task)` puts the task's text in its file for the task's duration."""

    def __init__(self, packages: Sequence[str], source_root: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lsp-copilot-crossfile-")
        self.root = Path(self._tmp.name)
        source_root = source_root or stdlib_root()
        for pkg in packages:
            shutil.copytree(source_root / pkg, self.root / pkg, ignore=shutil.ignore_patterns("__pycache__"))

    @contextmanager
    def holding(self, task: CrossFileTask) -> Iterator[Path]:
        """The workspace root, with `task.path` replaced by the task's text until the block ends."""
        target = self.root / task.path
        original = target.read_bytes()
        target.write_text(task.text, encoding="utf-8")
        try:
            yield self.root
        finally:
            target.write_bytes(original)

    def close(self) -> None:
        self._tmp.cleanup()


class TrainingStyleRetriever:
    """Cross-file context the way the embedded models saw it in training (`training.data.CrossFileIndex`).

    For the direct reference completer only: definitions (signature + docstring line) of names called near the
    cursor, from the modules the file imports and from its own directory. The pipeline has its own index.
    """

    def __init__(self, window_lines: int = 40) -> None:
        self.window_lines = window_lines
        self._indexes: dict[Path, CrossFileIndex] = {}

    def index_for(self, workspace: Path) -> CrossFileIndex:
        if workspace not in self._indexes:
            files = [SourceFile(p.relative_to(workspace).as_posix(), p.read_text(encoding="utf-8"))
                     for p in sorted(workspace.rglob("*.py")) if "__pycache__" not in p.parts]
            self._indexes[workspace] = CrossFileIndex(files)
        return self._indexes[workspace]

    def __call__(self, query: CompletionQuery) -> list[tuple[str, str]]:
        if query.workspace is None:
            return []
        above = query.prefix.split("\n")[-self.window_lines :]
        below = query.suffix.split("\n")[: self.window_lines // 2]
        window = "\n".join(above + below)
        return self.index_for(query.workspace).context_for(SourceFile(query.path, query.text), window)


@dataclass
class CrossFileSettings:
    """Knobs of one cross-file run."""

    packages: tuple[str, ...] | None = None  # default: HELD_OUT_PACKAGES, or every package under `source_root`
    source_root: Path | None = None  # where the packages are read from; default: the running Python's stdlib
    progress: bool = True
    direct: bool = False  # the direct greedy reference (with training-style retrieval) instead of the pipeline
    cursor: str = "line"  # "line": the whole line is the answer; "call": the line from its cross-file callee on
    candidates: int | None = None  # the pipeline's completion.candidates (None: the server's default)
    details: Path | None = None  # write both conditions' per-task rows here (JSON lines, `report.write_details`)

    def chosen_packages(self) -> tuple[str, ...]:
        """The packages to derive tasks from: as given, else the held-out stdlib ones, else all under the root."""
        if self.packages is not None:
            return self.packages
        return HELD_OUT_PACKAGES if self.source_root is None else discover_packages(self.source_root)


def over_tasks(name: str, each: Callable[[CrossFileTask, CompletionQuery], T], tasks: Sequence[CrossFileTask],
               workspace: Workspace | None, progress: bool) -> list[T]:
    """`each(task, query)` for every task, with the workspace index (`workspace` given: the task's file holds the
    task's text meanwhile) or the file alone."""
    from tqdm import tqdm

    results = []
    for task in tqdm(tasks, desc=name, unit="task", file=sys.stderr, disable=not progress, leave=False):
        if workspace is None:
            results.append(each(task, task.query(None)))
        else:
            with workspace.holding(task) as root:
                results.append(each(task, task.query(root)))
    return results


def complete_condition(
    name: str, completer: Completer, tasks: Sequence[CrossFileTask], workspace: Workspace | None, progress: bool
) -> list[TimedCompletion]:
    """Complete every task, with the workspace index (`workspace` given) or the file alone."""
    return over_tasks(name, lambda task, query: timed(completer, query), tasks, workspace, progress)


def answer_losses(
    name: str, completer: Completer, tasks: Sequence[CrossFileTask], workspace: Workspace | None, progress: bool
) -> list[float] | None:
    """Per task, the mean loss (nats per token) of the expected line after the completer's prompt, with the
    workspace index (`workspace` given) or the file alone; None when the completer cannot score (baselines)."""
    score = getattr(completer, "answer_loss", None)
    if score is None:
        return None
    return over_tasks(name, lambda task, query: float(score(query, task.expected)), tasks, workspace, progress)


def evaluate(
    tasks: Sequence[CrossFileTask], completer: Completer, settings: CrossFileSettings | None = None
) -> list[SystemScore]:
    """Exact match without and with the workspace index, on the same tasks and the same completer; for a model,
    also how likely it finds the expected line in each condition (`answer_loss`)."""
    settings = settings or CrossFileSettings()
    expected = [t.expected for t in tasks]
    off = complete_condition("no index", completer, tasks, None, settings.progress)
    loss_off = answer_losses("loss, no index", completer, tasks, None, settings.progress)
    workspace = Workspace(sorted({t.path.split("/", 1)[0] for t in tasks}), settings.source_root)
    try:
        on = complete_condition("workspace index", completer, tasks, workspace, settings.progress)
        loss_on = answer_losses("loss, workspace index", completer, tasks, workspace, settings.progress)
    finally:
        workspace.close()
    ids = [t.task_id for t in tasks]
    scores = [score_system("without workspace index", expected, off, task_ids=ids),
              score_system("with workspace index", expected, on, task_ids=ids)]
    for score, results, losses in zip(scores, (off, on), (loss_off, loss_on), strict=True):
        score.extra["callee_match"] = round(callee_match(tasks, results), 4)
        score.extra["context_recall"] = round(context_recall(tasks, results), 4)
        score.extra["edit_similarity"] = round(edit_similarity(tasks, results), 4)
        if losses:
            score.extra["answer_loss"] = round(sum(losses) / len(losses), 4)
    if loss_off and loss_on:  # share of tasks where the index made the expected line more likely
        lower = sum(b < a for a, b in zip(loss_off, loss_on, strict=True))
        scores[1].extra["answer_loss_lower"] = round(lower / len(tasks), 4)
    # the same tasks in both conditions: which ones the index turned right or wrong, and how likely such a split is
    scores[1].extra["exact_paired"] = paired(exact_hits(tasks, off), exact_hits(tasks, on))
    scores[1].extra["callee_paired"] = paired(callee_hits(tasks, off), callee_hits(tasks, on))
    return scores


def edit_similarity(tasks: Sequence[CrossFileTask], results: Sequence[TimedCompletion]) -> float:
    """Mean similarity (0..1, `difflib` ratio) of the completion's first line to the expected line, both stripped.

    CrossCodeEval's second metric beside exact match: it moves when a model gets closer without getting it all.
    """
    total = 0.0
    for task, result in zip(tasks, results, strict=True):
        got = result.completion.text.split("\n", 1)[0].strip()
        total += difflib.SequenceMatcher(None, got, task.expected).ratio()
    return total / len(tasks) if tasks else 0.0


def context_recall(tasks: Sequence[CrossFileTask], results: Sequence[TimedCompletion]) -> float:
    """Share of tasks whose prompt showed the definition (`def`/`class` line) of every name the answer calls.

    Retrieval's own score, independent of what the model makes of it (CrossCodeEval reports the same split).
    """
    hits = 0
    for task, result in zip(tasks, results, strict=True):
        shown = result.completion.context
        hits += all(re.search(rf"\b(?:def|class)\s+{re.escape(c.rsplit('.', 1)[-1])}\b", shown) for c in task.callees)
    return hits / len(tasks) if tasks else 0.0


_CALLED_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def callee_match(tasks: Sequence[CrossFileTask], results: Sequence[TimedCompletion]) -> float:
    """Share of tasks whose completion (first line) calls every name that the expected line calls.

    A softer signal than exact match, in the spirit of CrossCodeEval's identifier match: it shows whether the model
    found the sibling module's API (under the name the file imported it as), even when the rest of the line differs.
    """
    hits = callee_hits(tasks, results)
    return sum(hits) / len(hits) if hits else 0.0


def callee_hits(tasks: Sequence[CrossFileTask], results: Sequence[TimedCompletion]) -> list[bool]:
    """Per task: the completion's first line calls every name the expected line calls (`callee_match`)."""
    return [set(_CALLED_NAME.findall(task.expected)) <= set(_CALLED_NAME.findall(r.completion.text.split("\n", 1)[0]))
            for task, r in zip(tasks, results, strict=True)]


def exact_hits(tasks: Sequence[CrossFileTask], results: Sequence[TimedCompletion]) -> list[bool]:
    """Per task: exact match (`report.exact_match`)."""
    return [exact_match(r.completion.text, task.expected) for task, r in zip(tasks, results, strict=True)]


def run_crossfile(
    model_dir: Path | None = None,
    limit: int | None = None,
    as_json: bool = False,
    *,
    settings: CrossFileSettings | None = None,
    completer: Completer | None = None,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Exact match with and without the workspace index on (`limit` of, spread evenly) the cross-file tasks.

    Raises FileNotFoundError for a missing package or source root, ValueError when the packages hold no task.
    `model_dir` None means the embedded target; `completer` replaces the model (tests inject fakes). Prints a
    table (and, with `as_json`, the report as the last line) and returns the report.
    """
    settings = settings or CrossFileSettings()
    packages = settings.chosen_packages()
    all_tasks = load_tasks(packages, settings.source_root, settings.cursor)
    if not all_tasks:
        raise ValueError(f"no single-line statement of {', '.join(packages)} calls a definition of a sibling module: "
                         "nothing to evaluate")
    tasks = select(all_tasks, limit)
    path = "injected"
    if completer is None:
        model_dir = model_dir or EMBEDDED_DIR / "target"
        completer, path = make_model_completer(model_dir, direct=settings.direct, candidates=settings.candidates)
        if isinstance(completer, DirectModelCompleter):
            completer.retriever = TrainingStyleRetriever()
            completer.settings.file_header = True  # both conditions name the file; only the index differs
    scores = evaluate(tasks, completer, settings)
    if settings.details is not None:
        write_details(settings.details, scores)
    off, on = scores
    report: dict[str, Any] = {
        "benchmark": "crossfile",
        "tasks": len(tasks),
        "tasks_total": len(all_tasks),
        "cursor": settings.cursor,
        "source_root": str(settings.source_root or stdlib_root()),
        "packages": dict(Counter(t.path.split("/", 1)[0] for t in tasks)),
        "model": None if model_dir is None else str(model_dir),
        "completion_path": path,
        "systems": [s.to_json() for s in scores],
        "exact_match_gain": round(on.exact_match - off.exact_match, 4),
        "callee_match_gain": round(on.extra["callee_match"] - off.extra["callee_match"], 4),
        "context_recall": on.extra["context_recall"],
        "edit_similarity_gain": round(on.extra["edit_similarity"] - off.extra["edit_similarity"], 4),
        "exact_paired": on.extra["exact_paired"],
        "callee_paired": on.extra["callee_paired"],
    }
    if "answer_loss" in on.extra:
        report["answer_loss_gain"] = round(off.extra["answer_loss"] - on.extra["answer_loss"], 4)
        report["answer_loss_lower"] = on.extra["answer_loss_lower"]
    where = "whole lines" if settings.cursor == "line" else "rests of lines from the callee's name"
    title = (f"crossfile: {len(tasks)} of {len(all_tasks)} lines calling a sibling module's definition "
             f"({', '.join(packages)}; {where}), exact match")
    table = format_table(title, scores) + "\n" + "\n".join(
        f"{s.name}: calls what the expected line calls in {100 * s.extra['callee_match']:.1f}% of tasks; "
        f"the prompt showed the called definitions in {100 * s.extra['context_recall']:.1f}%; "
        f"edit similarity {100 * s.extra['edit_similarity']:.1f}%"
        + (f"; loss of the expected line {s.extra['answer_loss']:.3f} nats/token" if "answer_loss" in s.extra else "")
        for s in scores)
    if "answer_loss_gain" in report:
        table += (f"\nthe index lowered the expected line's loss by {report['answer_loss_gain']:.3f} nats/token on "
                  f"average, and on {100 * report['answer_loss_lower']:.1f}% of the tasks")
    for what, split in (("exact", report["exact_paired"]), ("the right API", report["callee_paired"])):
        table += (f"\n{what}: the index turned {_tasks(split['gained'])} right and {_tasks(split['lost'])} wrong "
                  f"(McNemar exact p = {split['p_value']:.4f})")
    emit(report, table, as_json, out)
    return report


def _tasks(n: float) -> str:
    return f"{n:g} task" + ("" if n == 1 else "s")
