"""`lsp-copilot complete` and `lsp-copilot context` as processes, on the embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import BRACKETS, BRACKETS_CURSOR, CURSOR, SAMPLE
from tests.e2e.lsp_session import server_env

LINE, COL = CURSOR[0] + 1, CURSOR[1] + 1  # 1-based, as the command line takes them


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_copilot", *args], capture_output=True, text=True,
                          env=server_env(), cwd=cwd, timeout=300)


def test_complete_streams_a_suggestion(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    out = _cli("complete", f"{workspace / 'sample.py'}:{LINE}:{COL}", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    as_json = _cli("complete", "--json", f"{workspace / 'sample.py'}:{LINE}:{COL}", cwd=workspace)
    result = json.loads(as_json.stdout.strip().splitlines()[-1])
    # the stream, then (when post-processing trimmed or balanced it) the final suggestion after a marker
    streamed, _, final = out.stdout.partition("--- final ---")
    assert result["text"].strip() == (final or streamed).strip()
    assert result["tokens"] > 0


def test_complete_json_lists_the_candidates_weighed(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    (workspace / "brackets.py").write_text(BRACKETS)
    line, col = BRACKETS_CURSOR
    out = _cli("complete", "--json", f"{workspace / 'brackets.py'}:{line + 1}:{col + 1}", cwd=workspace)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    ranking = result["ranking"]
    assert result["text"] == ranking[0]["text"] == "else:"
    assert result["candidates"] >= len(ranking) > 1
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    assert all(r["after_logprob"] < 0 and r["score"] == pytest.approx(r["logprob"] + 0.5 * r["after_logprob"])
               for r in ranking)


def test_complete_reports_bad_locations(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    out = _cli("complete", f"{workspace / 'sample.py'}:999:1", cwd=workspace)
    assert out.returncode != 0 and "outside the file" in out.stderr
    out = _cli("complete", f"{workspace / 'missing.py'}:1:1", cwd=workspace)
    assert out.returncode != 0 and "cannot read" in out.stderr
    out = _cli("complete", "--model", str(workspace / "no-model"), f"{workspace / 'sample.py'}:1:1", cwd=workspace)
    assert out.returncode == 2 and "no-model" in out.stderr


def test_context_shows_parts_and_prompt(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    (workspace / "sample.py").write_text(SAMPLE + "text)\n\n\ndef loud(text):\n    return shout(text)\n")
    lines = (workspace / "sample.py").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "shout(" in text)
    out = _cli("context", "--json", f"{workspace / 'sample.py'}:{line}:{len(lines[line - 1]) + 1}", cwd=workspace)
    assert out.returncode == 0, out.stderr
    described = json.loads(out.stdout.strip().splitlines()[-1])
    assert described["template"] == "embedded"
    assert "<fim_middle>" in described["prompt"]
    assert any("helpers.py" in part["source"] and "def shout" in part["text"] for part in described["parts"])


def test_eval_commands_print_a_json_report_last(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    """Both evaluations as processes on the embedded models, through the pipeline and through the direct loop."""
    reports = {}
    details = {extra: workspace / f"details{len(extra)}.jsonl" for extra in ((), ("--candidates", "1"))}
    own = workspace / "own"  # --source-root: a user's own package instead of the held-out stdlib ones
    (own / "pkg").mkdir(parents=True)
    (own / "pkg" / "__init__.py").write_text("")
    (own / "pkg" / "shapes.py").write_text('def area(w, h):\n    """Area of a w x h rectangle."""\n    return w * h\n')
    (own / "pkg" / "use.py").write_text("from pkg.shapes import area\n\n\ndef total(rects):\n"
                                        "    sizes = [area(w, h) for w, h in rects]\n    return sum(sizes)\n")
    for what, extra in (("humaneval-infill", ()), ("humaneval-infill", ("--candidates", "1")), ("crossfile", ()),
                        ("crossfile", ("--direct", "--source-root", str(own)))):
        keep = ("--details", str(details[extra])) if what == "humaneval-infill" else ()
        out = _cli("eval", what, "--limit", "2", "--json", *extra, *keep, cwd=workspace)
        assert out.returncode == 0, out.stderr
        reports[(what, extra)] = json.loads(out.stdout.strip().splitlines()[-1])
    humaneval = reports[("humaneval-infill", ())]
    assert humaneval["tasks"] == 2 and humaneval["completion_path"]["target"] == "pipeline"
    assert [s["name"] for s in humaneval["systems"]][:2] == ["target", "draft"]
    assert (humaneval["candidates"], reports[("humaneval-infill", ("--candidates", "1"))]["candidates"]) == (None, 1)
    assert reports[("crossfile", ())]["completion_path"] == "pipeline"
    direct = reports[("crossfile", ("--direct", "--source-root", str(own)))]
    assert direct["completion_path"] == "direct" and direct["tasks"] == direct["tasks_total"] == 1
    assert direct["packages"] == {"pkg": 1} and direct["source_root"] == str(own)
    assert {"context_recall", "edit_similarity_gain"} <= direct.keys()
    empty = _cli("eval", "crossfile", "--source-root", str(workspace / "nothing"), cwd=workspace)
    assert empty.returncode == 2 and "nothing" in empty.stderr and "Traceback" not in empty.stderr
    # the two HumanEval runs paired task by task from their --details files
    out = _cli("eval", "compare", "--before", str(details[("--candidates", "1")]), "--after", str(details[()]),
               "--json", cwd=workspace)
    assert out.returncode == 0, out.stderr
    compared = json.loads(out.stdout.strip().splitlines()[-1])
    target = next(s for s in humaneval["systems"] if s["name"] == "target")
    assert compared["tasks"] == 2 and compared["after"] == round(target["exact_match"] * 2)
    missing = _cli("eval", "compare", "--before", str(details[()]), cwd=workspace)
    assert missing.returncode == 2 and "--after" in missing.stderr


def test_bench_rerank_compares_greedy_and_reranked_answers(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    out = _cli("bench", "rerank", "--limit", "2", "--candidates", "4", "--json", cwd=workspace)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["tasks"] == 2 and set(report["modes"]) == {"greedy", "rerank4"}
    greedy = report["modes"]["greedy"]
    assert greedy["ratio_to_greedy"]["cold_ms_median"] == 1.0
    assert {"cold_ms", "keystroke_ms", "exact_match"} <= report["modes"]["rerank4"].keys()
