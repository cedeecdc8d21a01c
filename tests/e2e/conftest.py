"""Fixtures of the end-to-end tests: a workspace on disk and the server arguments for each model."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLE = '''import os


def read_lines(path):
    """Return the lines of the file at path, without line endings."""
    with open(path) as f:
        return [line.rstrip("\\n") for line in f]


def count_words(text):
    """Return the number of words in text."""
    return len(
'''
CURSOR = (len(SAMPLE.splitlines()) - 1, len("    return len("))  # 0-based (line, UTF-16 character)


# a hole whose greedy answer does not fit the next line (indented deeper); reranked, the answer is `else:`
BRACKETS = (
    'def correct_bracketing(brackets: str):\n'
    '    """ brackets is a string of "<" and ">".\n'
    '    return True if every opening bracket has a corresponding closing bracket.\n'
    '    """\n'
    '    depth = 0\n'
    '    for b in brackets:\n'
    '        if b == "<":\n'
    '            depth += 1\n'
    '        \n'
    '            depth -= 1\n'
    '        if depth < 0:\n'
    '            return False\n'
    '    return depth == 0\n'
)
BRACKETS_CURSOR = (8, 8)  # 0-based, after the blank line's indentation


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "sample.py").write_text(SAMPLE)
    (root / "helpers.py").write_text('def shout(text):\n    """Upper-case text and add an exclamation mark."""\n'
                                     '    return text.upper() + "!"\n')
    return root


@pytest.fixture
def tiny_args(tiny_models: tuple[Path, Path]) -> list[str]:
    """Server arguments for the tiny random models (fast, generates until max tokens)."""
    return ["--model", str(tiny_models[0]), "--draft", str(tiny_models[1]), "--device", "cpu"]


@pytest.fixture
def embedded_args(embedded_models: tuple[Path, Path]) -> list[str]:
    """No arguments: the server's default is the embedded model pair."""
    return []
