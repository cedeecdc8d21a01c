"""Scores of one system on a task set, the readable table, the one-JSON-object-last-line output, and the per-task
details that let two runs be compared task by task (`eval --details`, `eval compare`)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lsp_copilot.evaluation.completers import TimedCompletion, first_line


def exact_match(completion: str, expected: str) -> bool:
    """The completion's first line, stripped, equals the expected line, stripped."""
    return first_line(completion).strip() == expected.strip()


def paired(before: Sequence[bool], after: Sequence[bool]) -> dict[str, float]:
    """Two conditions on the same tasks: how many tasks only `after` gets right, how many only `before` does, and
    the exact two-sided McNemar p-value of that split (a binomial test on the discordant tasks): how likely a split
    at least this lopsided is if the conditions were equally good. One task of 90 either way is p = 1.0."""
    if len(before) != len(after):
        raise ValueError("both conditions need one entry per task")
    gained = sum(b and not a for a, b in zip(before, after, strict=True))
    lost = sum(a and not b for a, b in zip(before, after, strict=True))
    n, k = gained + lost, min(gained, lost)
    p_value = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"gained": gained, "lost": lost, "p_value": round(p_value, 4)}


@dataclass
class SystemScore:
    """One system (a model or a baseline) over a task set."""

    name: str
    tasks: int
    exact_match: float  # share of tasks, in [0, 1]
    pass_at_1: float | None = None  # share of tasks whose program passes its tests; None = not run
    tokens: int = 0  # generated tokens, all tasks together
    seconds: float = 0.0  # completer wall time, all tasks together
    errors: int = 0  # tasks on which the completer raised
    first_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)  # one row per task (`task_rows`); not in to_json

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.tokens and self.seconds > 0 else None

    @property
    def ms_per_task(self) -> float:
        return 1000.0 * self.seconds / self.tasks if self.tasks else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["details"]
        out["tokens_per_s"] = None if self.tokens_per_s is None else round(self.tokens_per_s, 1)
        out["ms_per_task"] = round(self.ms_per_task, 1)
        out["exact_match"] = round(self.exact_match, 4)
        out["pass_at_1"] = None if self.pass_at_1 is None else round(self.pass_at_1, 4)
        out["seconds"] = round(self.seconds, 2)
        return out


def score_system(
    name: str, expected: Sequence[str], results: Sequence[TimedCompletion], passed: Sequence[bool] | None = None,
    task_ids: Sequence[str] | None = None,
) -> SystemScore:
    """Exact match (and pass@1 when `passed` is given) of `results` against `expected`, task by task; with
    `task_ids`, the per-task rows too (`SystemScore.details`)."""
    if len(expected) != len(results) or (passed is not None and len(passed) != len(results)):
        raise ValueError("expected, results and passed must have one entry per task")
    n = len(expected)
    hits = sum(exact_match(r.completion.text, e) for r, e in zip(results, expected, strict=True))
    errors = [r.error for r in results if r.error is not None]
    return SystemScore(
        name=name,
        tasks=n,
        exact_match=hits / n if n else 0.0,
        pass_at_1=(sum(passed) / n if n else 0.0) if passed is not None else None,
        tokens=sum(r.completion.tokens for r in results),
        seconds=sum(r.seconds for r in results),
        errors=len(errors),
        first_error=errors[0] if errors else None,
        details=task_rows(name, task_ids, expected, results, passed) if task_ids is not None else [],
    )


def task_rows(system: str, task_ids: Sequence[str], expected: Sequence[str], results: Sequence[TimedCompletion],
              passed: Sequence[bool] | None = None) -> list[dict[str, Any]]:
    """One row per task: the system, the task, the expected line, the completion's first line, exact (and passed)."""
    rows: list[dict[str, Any]] = []
    for i, (task, exp, res) in enumerate(zip(task_ids, expected, results, strict=True)):
        row = {"system": system, "task": task, "expected": exp.strip(), "completion": first_line(res.completion.text),
               "exact": exact_match(res.completion.text, exp)}
        if passed is not None:
            row["passed"] = passed[i]
        rows.append(row)
    return rows


def write_details(path: Path, scores: Sequence[SystemScore]) -> None:
    """Every system's per-task rows as JSON lines (the file's folder is created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for score in scores:
            for row in score.details:
                out.write(json.dumps(row) + "\n")


def compare_details(before: Path, after: Path, system: str, measure: str = "exact",
                    after_system: str | None = None) -> dict[str, Any]:
    """Two runs' details (`write_details`) for one system (or `system` in `before` against `after_system` in
    `after`: the two conditions of one cross-file run), paired on the tasks both have: how many tasks `after`
    turned right and wrong on `measure` ("exact" or "passed"), the McNemar p-value, and which tasks."""
    after_system = after_system or system
    runs = [_outcomes(before, system, measure), _outcomes(after, after_system, measure)]
    common = [t for t in runs[0] if t in runs[1]]
    if not common:
        raise ValueError(f"{before} and {after} share no task")
    was, now = [runs[0][t] for t in common], [runs[1][t] for t in common]
    return {"system": system, "after_system": after_system, "measure": measure, "tasks": len(common),
            "before": sum(was), "after": sum(now),
            **paired(was, now),
            "turned_right": [t for t, a, b in zip(common, was, now, strict=True) if b and not a],
            "turned_wrong": [t for t, a, b in zip(common, was, now, strict=True) if a and not b]}


def _outcomes(path: Path, system: str, measure: str) -> dict[str, bool]:
    """{task: outcome} of one system's rows in a details file."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    mine = [row for row in rows if row.get("system") == system]
    if not mine:
        raise ValueError(f"{path}: no rows for the system {system!r}")
    if any(measure not in row for row in mine):
        raise ValueError(f"{path}: the rows of {system!r} have no {measure!r}")
    return {row["task"]: bool(row[measure]) for row in mine}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def format_table(title: str, scores: Sequence[SystemScore]) -> str:
    """A fixed-width table: system, tasks, exact match, pass@1, tokens/s, ms/task, errors."""
    width = max([len("system"), *(len(s.name) for s in scores)])
    head = f"{'system':<{width}}  {'tasks':>5}  {'exact':>6}  {'pass@1':>6}  {'tok/s':>7}  {'ms/task':>8}  errors"
    lines = [title, head, "-" * len(head)]
    for s in scores:
        tps = "-" if s.tokens_per_s is None else f"{s.tokens_per_s:7.1f}"
        lines.append(
            f"{s.name:<{width}}  {s.tasks:>5}  {_pct(s.exact_match):>6}  {_pct(s.pass_at_1):>6}  {tps:>7}  "
            f"{s.ms_per_task:8.1f}  {s.errors}"
        )
    return "\n".join(lines)


def emit(report: dict[str, Any], table: str, as_json: bool, out: TextIO | None = None) -> None:
    """Print the table; with `as_json` the last printed line is the report as one JSON object."""
    stream = out or sys.stdout
    print(table, file=stream)
    if as_json:
        print(json.dumps(report, sort_keys=False), file=stream)
    stream.flush()
