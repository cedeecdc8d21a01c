"""Single-line infilling on the held-out stdlib packages: the greedy answer against reranked candidates.

Every single-line statement (`humaneval_infill.single_line_statements`) of at least 4 characters in the packages held
out from training (email, json, xmlrpc, wsgiref, tomllib) is a task: the line removed (its indentation and newline
kept), the cursor after the indentation, exact match and edit similarity on the stripped line. `--limit` tasks are
spread evenly over them. Both modes run through the server's pipeline on one engine (the file alone, no index).

    python bench/rerank_heldout_lines.py --limit 400 --candidates 1,8
"""

from __future__ import annotations

import argparse
import difflib
import json

from lsp_copilot.evaluation.completers import CompletionQuery
from lsp_copilot.evaluation.humaneval_infill import select, single_line_statements
from lsp_copilot.evaluation.models import EMBEDDED_DIR, threaded_completer
from lsp_copilot.evaluation.report import paired
from lsp_copilot.training.corpus import HELD_OUT_PACKAGES, stdlib_root


def load_tasks() -> list[tuple[str, CompletionQuery, str]]:
    """(task id, query, expected line) for every single-line statement of the held-out packages."""
    root = stdlib_root()
    tasks = []
    for package in HELD_OUT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines(keepends=True)
            starts = [0]
            for line in lines:
                starts.append(starts[-1] + len(line))
            rel = str(path.relative_to(root))
            for number in single_line_statements(source):
                line = lines[number - 1]
                if len(line.strip()) < 4:
                    continue
                cursor = starts[number - 1] + len(line) - len(line.lstrip())
                text = source[:cursor] + "\n" + source[starts[number]:]
                tasks.append((f"{rel}:{number}", CompletionQuery(text, cursor, rel, None), line.strip()))
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--candidates", default="1,8", help="comma-separated completion.candidates to compare")
    parser.add_argument("--lines", type=int, default=None, help="completion.rerankLines (default: the server's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    completer = threaded_completer(EMBEDDED_DIR / "target", EMBEDDED_DIR / "draft", args.threads)
    if args.lines is not None:
        completer.settings.completion.rerank_lines = args.lines
    tasks = select(load_tasks(), args.limit)
    hits: dict[int, list[bool]] = {}
    report: dict[str, object] = {"tasks": len(tasks)}
    for k in (int(c) for c in args.candidates.split(",")):
        completer.settings.completion.candidates = k
        answers = [completer(query).text.split("\n")[0].strip() for _, query, _ in tasks]
        hits[k] = [a == expected for a, (_, _, expected) in zip(answers, tasks, strict=True)]
        similarity = sum(difflib.SequenceMatcher(None, a, e).ratio()
                         for a, (_, _, e) in zip(answers, tasks, strict=True)) / len(tasks)
        report[f"candidates={k}"] = {"exact": round(sum(hits[k]) / len(tasks), 4),
                                     "edit_similarity": round(similarity, 4)}
        print(f"candidates {k}: {len(tasks)} tasks, exact {sum(hits[k])} ({sum(hits[k]) / len(tasks):.1%}), "
              f"edit similarity {similarity:.1%}", flush=True)
    first, *others = hits
    for k in others:
        p = paired(hits[first], hits[k])
        report[f"paired {first} -> {k}"] = p
        print(f"{first} -> {k} candidates: {p}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
