"""`lsp-copilot complete` and `lsp-copilot context` as processes, on the embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import SAMPLE
from tests.e2e.lsp_session import server_env

LINE = len(SAMPLE.splitlines())  # 1-based line of the indented empty line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp_copilot", *args], capture_output=True, text=True,
                          env=server_env(), cwd=cwd, timeout=300)


def test_complete_streams_a_suggestion(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    out = _cli("complete", f"{workspace / 'sample.py'}:{LINE}:5", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    as_json = _cli("complete", "--json", f"{workspace / 'sample.py'}:{LINE}:5", cwd=workspace)
    result = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert result["text"].strip() == out.stdout.strip()
    assert result["tokens"] > 0


def test_complete_reports_bad_locations(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    out = _cli("complete", f"{workspace / 'sample.py'}:999:1", cwd=workspace)
    assert out.returncode != 0 and "outside the file" in out.stderr
    out = _cli("complete", f"{workspace / 'missing.py'}:1:1", cwd=workspace)
    assert out.returncode != 0 and "cannot read" in out.stderr
    out = _cli("complete", "--model", str(workspace / "no-model"), f"{workspace / 'sample.py'}:1:1", cwd=workspace)
    assert out.returncode == 2 and "no-model" in out.stderr


def test_context_shows_parts_and_prompt(workspace: Path, embedded_models: tuple[Path, Path]) -> None:
    (workspace / "sample.py").write_text(SAMPLE.replace('    """Return the number of words in text."""\n    \n',
                                                        '    """Return the number of words in text."""\n    '
                                                        'return shout(text)\n'))
    out = _cli("context", "--json", f"{workspace / 'sample.py'}:{LINE}:12", cwd=workspace)
    assert out.returncode == 0, out.stderr
    described = json.loads(out.stdout.strip().splitlines()[-1])
    assert described["template"] == "embedded"
    assert "<fim_middle>" in described["prompt"]
    assert any("helpers.py" in part["path"] for part in described["parts"])
