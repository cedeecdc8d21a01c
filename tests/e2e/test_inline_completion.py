"""textDocument/inlineCompletion end to end: real server process, real model, stdio and TCP, streaming."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from lsprotocol import types

from tests.e2e.conftest import BRACKETS, BRACKETS_CURSOR, CURSOR, SAMPLE
from tests.e2e.lsp_session import _plain, session


@pytest.mark.parametrize("tcp", [False, True], ids=["stdio", "tcp"])
async def test_inline_completion_streams_and_answers(workspace: Path, embedded_args: list[str], tcp: bool) -> None:
    async with session(workspace, *embedded_args, tcp=tcp) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        msg_id, fut = s.inline(uri, *CURSOR)
        result: types.InlineCompletionList = await asyncio.wait_for(fut, 120)
        assert len(result.items) == 1
        item = result.items[0]
        assert item.insert_text.strip(), "the embedded model should suggest something for a function body"
        assert item.range == types.Range(start=types.Position(*CURSOR), end=types.Position(*CURSOR))
        chunks = s.chunks_for(msg_id)
        assert chunks and chunks[-1]["done"] is True
        assert [c["done"] for c in chunks[:-1]] == [False] * (len(chunks) - 1)
        assert chunks[-1]["text"] == item.insert_text
        assert all(c["uri"] == uri and c["version"] == 1 for c in chunks)
        # The shown text only grows while streaming (post-processing may trim the very end).
        for a, b in itertools.pairwise(chunks[:-1]):
            assert b["text"].startswith(a["text"][: max(0, len(a["text"]) - 3)])


async def test_incremental_edits_and_utf16_positions(workspace: Path, embedded_args: list[str]) -> None:
    text = 'NAME = "café ☕ 😀"\n\n\ndef greet():\n    return \n'
    async with session(workspace, *embedded_args) as s:
        uri = s.open(workspace / "greet.py", text)
        # Insert after the emoji (UTF-16: 😀 is two code units) on line 0, then complete after `return `.
        s.change(uri, 2, (0, 17), (0, 17), "!")
        s.change(uri, 3, (4, 11), (4, 11), "NA")
        params = {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 13}}
        _, fut = s.request("lspCopilot/context", params)
        ctx = _plain(await asyncio.wait_for(fut, 120))
        prefix = ctx["prefix"]["text"]
        assert prefix.endswith('NAME = "café ☕ 😀!"\n\n\ndef greet():\n    return NA')
        _, fut = s.inline(uri, 4, 13)
        result = await asyncio.wait_for(fut, 120)
        assert isinstance(result, types.InlineCompletionList)


async def test_streaming_off_sends_no_chunks(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, init_options={"streaming": False}) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        _, fut = s.inline(uri, *CURSOR)
        await asyncio.wait_for(fut, 120)
        assert s.chunks == []


async def test_streaming_opt_in_by_capability(workspace: Path, tiny_args: list[str]) -> None:
    async with session(workspace, *tiny_args, init_options={"streaming": False},
                       experimental={"lspCopilot": {"streaming": True}}) as s:
        uri = s.open(workspace / "sample.py", SAMPLE)
        msg_id, fut = s.inline(uri, *CURSOR)
        await asyncio.wait_for(fut, 120)
        assert s.chunks_for(msg_id)[-1]["done"] is True


TEXTOPS = ('from pkg.core import blend_colours as mix\n\nQUUX_LIMIT = 3\n\n\n'
           'def frobnicate_widget(widget):\n    """Frobnicate one widget."""\n    return widget\n\n\n'
           'def zorblax_count(items):\n    """Count the zorblaxes in items."""\n    return len(items)\n')
USE = "from pkg import textops\n\n\ndef tidy(widget):\n    return textops."
INTERFACE = ("frobnicate_widget", "zorblax_count", "QUUX_LIMIT")  # not `mix`: imported, not re-exported


async def _suggest_after_module(root: Path, args: list[str], config: dict | None = None, use: str = USE,
                                at: tuple[int, int] = (4, len("    return textops."))) -> str:
    async with session(root, *args, config=config) as s:
        s.open(root / "pkg" / "textops.py", TEXTOPS)
        uri = s.open(root / "pkg" / "use.py", use)
        _, fut = s.inline(uri, *at)
        result: types.InlineCompletionList = await asyncio.wait_for(fut, 120)
        return result.items[0].insert_text if result.items else ""


async def test_after_a_module_name_the_suggestion_finishes_a_name_it_binds(tmp_path: Path,
                                                                           embedded_args: list[str]) -> None:
    """completion.guardMembers: the real server, the embedded model; the rule on (default) and off."""
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "textops.py").write_text(TEXTOPS)
    (root / "pkg" / "use.py").write_text(USE)
    guided = await _suggest_after_module(root, embedded_args)
    assert guided.startswith(INTERFACE), guided
    free = await _suggest_after_module(root, embedded_args, {"completion": {"guardMembers": False}})
    assert free != guided and not free.startswith(INTERFACE), free  # the model alone does not know these names


async def test_after_a_module_name_the_suggestion_prefers_what_the_file_returns_there(tmp_path: Path,
                                                                                   embedded_args: list[str]) -> None:
    """completion.memberUsageWeight: a name the file already returns twelve times wins over the model's choice
    (at the default 0.1: (p + 1.2) / 2.2 > 1/2), even where the prompt does not show those uses (far below)."""
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "textops.py").write_text(TEXTOPS)
    chosen = await _suggest_after_module(root, embedded_args)
    other = next(n for n in ("frobnicate_widget", "zorblax_count") if not chosen.startswith(n))
    far = "".join(f"LIMIT_{i} = {i}\n" for i in range(600))  # more than the prompt's suffix window
    calls = "".join(f"def step_{i}(widget):\n    return textops.{other}(widget)\n\n\n" for i in range(12))
    use = USE + "\n\n\n" + far + "\n\n" + calls
    (root / "pkg" / "use.py").write_text(use)
    cursor = USE.count("\n"), len(USE) - USE.rindex("\n") - 1
    assert (await _suggest_after_module(root, embedded_args, use=use, at=cursor)).startswith(other + "(")
    alone = await _suggest_after_module(root, embedded_args, {"completion": {"memberUsageWeight": 0}}, use=use,
                                        at=cursor)
    assert not alone.startswith(other), alone  # weight 0: the model's own choice again


async def test_after_a_namespace_import_in_typescript_the_suggestion_finishes_an_export(
        tmp_path: Path, embedded_args: list[str]) -> None:
    """The guide for ES modules, through the real server: `m.` of `import * as m` finishes what `m` exports, found by
    the index (the module is not open), never its private function."""
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "textops.ts").write_text(
        "export function frobnicateWidget(w: string): string {\n  return w;\n}\n\n"
        "export const QUUX_LIMIT = 3;\n\nfunction zorblaxHidden(): number {\n  return 1;\n}\n")
    use = "import * as textops from './textops';\n\nexport function tidy(w: string): string {\n  return textops."
    (root / "src" / "use.ts").write_text(use)
    async with session(root, *embedded_args) as s:
        uri = s.open(root / "src" / "use.ts", use, language_id="typescript")
        _, fut = s.inline(uri, 3, len("  return textops."))
        result: types.InlineCompletionList = await asyncio.wait_for(fut, 120)
    text = result.items[0].insert_text if result.items else ""
    assert text.startswith(("frobnicateWidget", "QUUX_LIMIT")), text


async def test_a_single_line_answer_is_the_candidate_the_lines_below_read_best_after(
        workspace: Path, embedded_args: list[str]) -> None:
    """completion.candidates: the greedy answer writes a statement where the next line is indented deeper; of the
    eight candidates the server weighs, `else:` is the one under which the lines below read best."""
    answers = []
    for config in ({"completion": {"candidates": 1}}, None):
        async with session(workspace, *embedded_args, config=config) as s:
            uri = s.open(workspace / "brackets.py", BRACKETS)
            _, fut = s.inline(uri, *BRACKETS_CURSOR)
            result: types.InlineCompletionList = await asyncio.wait_for(fut, 120)
            answers.append(result.items[0].insert_text if result.items else "")
    greedy, reranked = answers
    assert reranked == "else:", answers
    assert greedy != reranked, answers
