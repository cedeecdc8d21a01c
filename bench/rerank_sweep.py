"""The sweep behind `completion.candidates`, `candidateGap` and `rerankWeight`: HumanEval infilling exact match on
the even-numbered tasks (where the settings were chosen) or the odd-numbered ones (where they were checked once),
through the server's pipeline, each setting against the greedy answer on the same tasks.

    python bench/rerank_sweep.py --split even --configs 1:3:0.5,2:3:0.5,4:3:0.5,8:3:0.5,12:3:0.5,8:3:1,8:3:2
    python bench/rerank_sweep.py --split odd --configs 8:3:0.5,4:3:0.5

A config is candidates:gap:weight[:lines] (lines: completion.rerankLines, default 4). Each takes 2-4 minutes on 503
tasks here.
"""

from __future__ import annotations

import argparse
import json

from lsp_copilot.evaluation.humaneval_infill import load_tasks
from lsp_copilot.evaluation.models import EMBEDDED_DIR, threaded_completer
from lsp_copilot.evaluation.report import exact_match, paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=["even", "odd"], default="even")
    parser.add_argument("--configs", default="8:3:0.5")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    completer = threaded_completer(EMBEDDED_DIR / "target", EMBEDDED_DIR / "draft", args.threads)
    tasks = load_tasks()[0 if args.split == "even" else 1 :: 2]
    completion = completer.settings.completion

    def hits(candidates: int, gap: float, weight: float, lines: int = 4) -> list[bool]:
        completion.candidates, completion.candidate_gap, completion.rerank_weight = candidates, gap, weight
        completion.rerank_lines = lines
        return [exact_match(completer(t.query()).text, t.expected) for t in tasks]

    greedy = hits(1, 0.0, 0.0)
    report: dict[str, object] = {"split": args.split, "tasks": len(tasks), "greedy": sum(greedy)}
    print(f"{args.split} tasks: {len(tasks)}; greedy: {sum(greedy)} exact", flush=True)
    for config in args.configs.split(","):
        k, gap, weight, *lines = config.split(":")
        got = hits(int(k), float(gap), float(weight), int(lines[0]) if lines else 4)
        report[config] = {"exact": sum(got), **paired(greedy, got)}
        print(f"candidates {k}, gap {gap}, weight {weight}, lines {lines[0] if lines else 4}: {sum(got)} exact; "
              f"against greedy "
              f"{paired(greedy, got)}", flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
