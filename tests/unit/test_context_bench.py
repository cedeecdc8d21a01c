"""The context benchmark: its generated files are valid code, and a short run reports every figure."""

from __future__ import annotations

from lsp_copilot.benchmarks.context import generate_python, generate_typescript, run_context_bench
from lsp_copilot.languages import default_registry


def test_generated_sources_are_deterministic_valid_code() -> None:
    py, ts = generate_python(400, seed=3), generate_typescript(300, seed=3)
    assert py == generate_python(400, seed=3) and py != generate_python(400, seed=4)
    assert py.count("\n") == 400 and ts.count("\n") == 300
    for grammar, text in (("python", py), ("typescript", ts)):
        parser = default_registry().parser(grammar)
        assert parser is not None
        # The last definition may be cut mid-way by the line limit; everything before it parses cleanly.
        cut = text.rfind("\n@dataclass" if grammar == "python" else "\nexport interface ")
        assert not parser.parse(text[:cut].encode()).root_node.has_error


def test_short_run_reports_each_language(capsys) -> None:  # type: ignore[no-untyped-def]
    report = run_context_bench(as_json=True, edits=4, background_parse=False)
    assert set(report["languages"]) == {"python", "typescript"}
    py = report["languages"]["python"]
    assert py["lines"] >= 10_000 and report["languages"]["typescript"]["lines"] >= 5_000
    for key in ("reparse_ms", "context_ms", "reparse_plus_context_ms", "editing_thread_cpu_ms"):
        assert 0 <= py[key]["p50"] <= py[key]["p99"] <= py[key]["max"]
    assert isinstance(report["pass"], bool)
    assert '"languages"' in capsys.readouterr().out
