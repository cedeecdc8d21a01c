"""`lsp-copilot bench rerank`: the latency of weighing several single-line candidates against the greedy answer alone.

Both modes run through the server's own pipeline (context, prompt, engine, post-processing) on one engine, on the
same HumanEval single-line infilling tasks, alternating which mode goes first per task. Per task and mode: a cold
request (every cache emptied: the prompt and, when reranking, the lines above the cursor are read from scratch), then
the request after typing the answer's first character (both caches warm, as on the next keystroke). Exact match is
reported beside the cost.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from lsp_copilot.benchmarks.decode import percentile
from lsp_copilot.evaluation.completers import CompletionQuery
from lsp_copilot.evaluation.humaneval_infill import InfillTask, load_tasks, select
from lsp_copilot.evaluation.models import PipelineCompleter, threaded_completer
from lsp_copilot.evaluation.report import exact_match


def typed_one_character(task: InfillTask) -> CompletionQuery:
    """The task's query after the user typed the first character of the expected line."""
    query = task.query()
    text = query.text[: query.offset] + task.expected[0] + query.text[query.offset :]
    return CompletionQuery(text, query.offset + 1, query.path, query.workspace)


def timed_ms(completer: PipelineCompleter, query: CompletionQuery) -> tuple[float, str]:
    started = time.perf_counter()
    text = completer(query).text
    return (time.perf_counter() - started) * 1000.0, text


def summarize(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "p95": round(percentile(values, 0.95), 1)}


def run_rerank_bench(model_dir: Path, draft_dir: Path | None, limit: int | None, candidates: int, as_json: bool,
                     threads: int = 1, device: str = "cpu") -> dict[str, Any]:
    """Measure both modes; print a table (and, with as_json, one JSON line last)."""
    completer = threaded_completer(model_dir, draft_dir, threads, device)
    engine = completer.model.engine
    tasks = select(load_tasks(), limit or 60)
    modes = {"greedy": 1, f"rerank{candidates}": candidates}
    cold: dict[str, list[float]] = {m: [] for m in modes}
    keystroke: dict[str, list[float]] = {m: [] for m in modes}
    hits = dict.fromkeys(modes, 0)
    with torch.inference_mode():
        completer(tasks[0].query())  # warm-up: first-call costs are not what a request costs
        for i, task in enumerate(tasks):
            order = list(modes) if i % 2 == 0 else list(reversed(modes))
            for mode in order:
                completer.settings.completion.candidates = modes[mode]
                engine.clear_cache()
                ms, text = timed_ms(completer, task.query())
                cold[mode].append(ms)
                hits[mode] += exact_match(text, task.expected)
                keystroke[mode].append(timed_ms(completer, typed_one_character(task))[0])
    base = next(iter(modes))
    report: dict[str, Any] = {
        "model": str(model_dir), "draft": str(draft_dir) if draft_dir else None, "tasks": len(tasks),
        "threads": torch.get_num_threads(), "device": str(engine.device),
        "modes": {m: {"cold_ms": summarize(cold[m]), "keystroke_ms": summarize(keystroke[m]),
                      "exact_match": round(hits[m] / len(tasks), 4)} for m in modes},
    }
    for m in modes:
        report["modes"][m]["ratio_to_greedy"] = {
            f"{kind}_{stat}": round(report["modes"][m][kind][stat] / report["modes"][base][kind][stat], 2)
            for kind in ("cold_ms", "keystroke_ms") for stat in ("median", "p95")}
    print_report(report)
    if as_json:
        print(json.dumps(report))
    return report


def print_report(report: dict[str, Any]) -> None:
    """A human-readable table of the report."""
    print(f"rerank bench: {report['tasks']} HumanEval single-line tasks, {report['threads']} torch threads, "
          f"{report['device']}, model {report['model']}, draft {report['draft']}")
    print(f"{'mode':10} {'cold p50':>9} {'p95':>7} {'x':>5} {'key p50':>8} {'p95':>7} {'x':>5} {'exact':>6}")
    for mode, m in report["modes"].items():
        r = m["ratio_to_greedy"]
        print(f"{mode:10} {m['cold_ms']['median']:9.1f} {m['cold_ms']['p95']:7.1f} {r['cold_ms_median']:5.2f} "
              f"{m['keystroke_ms']['median']:8.1f} {m['keystroke_ms']['p95']:7.1f} {r['keystroke_ms_median']:5.2f} "
              f"{m['exact_match']:6.1%}")
