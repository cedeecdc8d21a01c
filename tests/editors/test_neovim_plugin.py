"""The Neovim plugin against the real server in a real headless Neovim: ghost text is exactly what the server sent."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "editor_clients" / "neovim" / "tests"))
from harness import REPO_ROOT, Nvim, NvimOptions, server_cmd

pytestmark = pytest.mark.slow

EMBEDDED = REPO_ROOT / "lsp_copilot" / "models" / "target" / "config.json"
# Lines after which a Python model suggests something; the first one that yields a non-empty suggestion is used.
PROMPTS = ["def add(a, b):\n    return ", "import os\n\n\ndef read_file(path):\n    with open(", "for i in range("]


@pytest.fixture(scope="module")
def models(request: pytest.FixtureRequest) -> tuple[Path | None, Path | None]:
    """The embedded models (None, None: the server's default) or, before they ship, the random tiny ones."""
    if EMBEDDED.exists():
        return None, None
    target, draft = request.getfixturevalue("tiny_models")
    return target, draft


@pytest.fixture(scope="module")
def nvim(tmp_path_factory: pytest.TempPathFactory, models: tuple[Path | None, Path | None]) -> Iterator[Nvim]:
    """One Neovim + server for the module (model loads once); every test opens a fresh file."""
    home = tmp_path_factory.mktemp("nvim_home")
    (home / "work").mkdir()
    settings = {"completion": {"maxTokens": 48, "streamIntervalMs": 5, "waitForModelMs": 20000, "timeLimitMs": 10000}}
    setup = {
        "cmd": server_cmd(*models, log_file=home / "server.log"),
        "cmd_cwd": str(REPO_ROOT),
        "debounce_ms": 30,
        "auto_trigger": False,
        "settings": settings,
    }
    n = Nvim(home, NvimOptions(setup=setup))
    n.nvim.command(f"edit {home / 'work' / 'warmup.py'}")
    n.wait_for(lambda: n.lua("local c = vim.lsp.get_clients({name='lsp_copilot'})[1]; return c and c.initialized"),
               "the lsp_copilot client to initialize")
    def settled() -> list[dict[str, Any]]:
        return [s["params"] for s in n.tap()["statuses"] if s["params"].get("state") in ("ready", "error")]

    states = n.wait_for(settled, "the server to report state=ready", timeout_s=120)
    assert states[-1]["state"] == "ready", f"the server failed to load its model: {states[-1]}"
    yield n
    n.close()


_counter = iter(range(1000))


def open_file(n: Nvim, text: str = "") -> Path:
    """A new Python file in the workspace, opened, its client attached, in normal mode with the tap reset."""
    n.feed("<Esc>")
    n.wait_for(lambda: n.mode() == "n", "normal mode")
    path = n.home / "work" / f"t{next(_counter)}.py"
    path.write_text(text, encoding="utf-8")
    n.nvim.command(f"edit {path}")
    n.wait_for(lambda: n.lua("return #vim.lsp.get_clients({name='lsp_copilot', bufnr=0}) == 1"), "attach")
    n.lua("require('lsp_copilot').plugin().cfg.auto_trigger = false; require('lsp_copilot').enable(); _G.tap.reset()")
    return path


def responses(n: Nvim, request_id: int) -> list[dict[str, Any]]:
    return [r for r in n.tap()["responses"] if r["id"] == request_id]


def inline_requests(n: Nvim) -> list[dict[str, Any]]:
    return [r for r in n.tap()["requests"] if r["method"] == "textDocument/inlineCompletion"]


def first_text(response: dict[str, Any]) -> str:
    result = response["result"] or {}
    items = result.get("items", result) if isinstance(result, dict) else result
    if not items:
        return ""
    text = items[0]["insertText"]
    return str(text["value"] if isinstance(text, dict) else text)


def request_and_wait(n: Nvim) -> tuple[int, str]:
    """Manual trigger at the cursor; waits for its response. Returns (request id, the insertText the server sent)."""
    before = len(inline_requests(n))
    assert n.lua("return require('lsp_copilot').suggest()") is True
    request_id = int(inline_requests(n)[before]["id"])
    response = n.wait_for(lambda: responses(n, request_id), f"the response to request {request_id}")[0]
    err = response["err"]
    assert err is None, f"the server answered request {request_id} with an error: {err.get('message')}"
    return request_id, first_text(response)


def type_until_suggestion(n: Nvim, typed: str = "") -> tuple[int, str]:
    """Opens files with each prompt, types `typed` at its end in insert mode, until the server suggests something."""
    for prompt in PROMPTS:
        open_file(n, prompt)
        n.feed("GA" + typed)
        end = prompt.split("\n")[-1] + typed
        n.wait_for(lambda: n.mode() == "i" and n.line().endswith(end), "insert mode")  # noqa: B023
        request_id, text = request_and_wait(n)
        if text:
            n.wait_for(lambda: n.ghost(), "the ghost text")
            return request_id, text
    pytest.skip("the model suggested nothing at any of the prompts")


def test_typing_in_insert_mode_shows_ghost_text_equal_to_what_the_server_sent(nvim: Nvim) -> None:
    open_file(nvim, "def add(a, b):\n")
    nvim.lua("require('lsp_copilot').plugin().cfg.auto_trigger = true")
    nvim.feed("Goreturn a")  # `o` indents the line (Python ftplugin)
    request = nvim.wait_for(lambda: inline_requests(nvim), "an automatic inlineCompletion request")[-1]
    assert nvim.line().endswith("return a")
    assert request["params"]["context"]["triggerKind"] == 2  # Automatic
    assert request["params"]["position"] == {"line": 1, "character": len(nvim.line())}
    response = nvim.wait_for(lambda: responses(nvim, request["id"]), "the automatic request's response")[0]
    text = first_text(response)
    if not text:  # the model may legitimately suggest nothing there: then ask at prompts where it does
        _, text = type_until_suggestion(nvim)
    ghost = nvim.wait_for(nvim.ghost, "the ghost text")
    assert ghost["text"] == text
    assert ghost["count"] == 1
    assert (ghost["row"], ghost["col"]) == nvim.cursor()
    assert set(ghost["hl"]) == {"LspCopilotSuggestion"}
    assert ghost["n_virt_lines"] == text.count("\n")
    if text.split("\n")[0]:
        assert ghost["virt_text_pos"] == "inline"


def test_tab_inserts_the_suggestion_and_moves_the_cursor_to_its_end(nvim: Nvim) -> None:
    _, text = type_until_suggestion(nvim, typed="x")
    before = nvim.text()
    row, col = nvim.cursor()
    nvim.feed("<Tab>")
    nvim.wait_for(lambda: nvim.text() != before, "the accepted text")
    assert nvim.text() == before + text
    lines = text.split("\n")
    expected_col = (col if len(lines) == 1 else 0) + len(lines[-1].encode())
    assert nvim.cursor() == (row + len(lines) - 1, expected_col)
    assert nvim.mode() == "i"
    assert nvim.ghost() is None
    # Undo takes back the accepted text only, not what was typed before it in the same insert.
    nvim.feed("<Esc>u")
    nvim.wait_for(lambda: nvim.text() != before + text, "undo")
    assert nvim.text() == before
    assert before.endswith("x")


def test_tab_without_a_suggestion_inserts_a_normal_tab(nvim: Nvim) -> None:
    open_file(nvim, "x = 1\n")
    nvim.feed("Go")
    nvim.wait_for(lambda: nvim.mode() == "i", "insert mode")
    assert nvim.ghost() is None
    nvim.feed("<Tab>")
    nvim.wait_for(lambda: nvim.line() == "    ", "an expanded tab")
    assert nvim.lua("return require('lsp_copilot').is_visible()") is False


def test_dismiss_clears_the_ghost_text(nvim: Nvim) -> None:
    type_until_suggestion(nvim)
    before = nvim.text()
    nvim.feed("<C-]>")
    nvim.wait_for(lambda: nvim.ghost() is None, "the ghost text to clear")
    assert nvim.suggestion() is None
    assert nvim.text() == before


def test_typing_through_keeps_the_suggestion_advanced_without_a_new_request(nvim: Nvim) -> None:
    _, text = type_until_suggestion(nvim)
    first_line = text.split("\n")[0]
    if len(first_line) < 2 or not first_line.isascii():
        pytest.skip(f"suggestion {text!r} has no first line to type through")
    nvim.lua("require('lsp_copilot').plugin().cfg.auto_trigger = true")
    sent = len(inline_requests(nvim))
    row, col = nvim.cursor()
    typed = first_line[0]
    nvim.feed(typed.replace("<", "<lt>"))
    nvim.wait_for(lambda: (g := nvim.ghost()) and g["text"] == text[1:], "the advanced ghost text")
    assert nvim.ghost()["col"] == col + 1  # type: ignore[index]
    time.sleep(0.3)  # well past the debounce: an automatic request would have been sent by now
    assert len(inline_requests(nvim)) == sent
    assert nvim.ghost()["text"] == text[1:]  # type: ignore[index]
    # Accepting now inserts the rest only.
    nvim.feed("<Tab>")
    nvim.wait_for(lambda: nvim.cursor() != (row, col + 1), "the accept")
    assert "\n".join(nvim.nvim.current.buffer[:]).endswith(text)


def test_a_non_matching_keystroke_drops_the_suggestion(nvim: Nvim) -> None:
    _, text = type_until_suggestion(nvim)
    char = "Q" if not text.startswith("Q") else "Z"
    nvim.feed(char)
    nvim.wait_for(lambda: nvim.ghost() is None, "the ghost text to clear")
    assert nvim.suggestion() is None


def test_cursor_move_and_mode_change_clear_the_ghost_text(nvim: Nvim) -> None:
    type_until_suggestion(nvim)
    nvim.feed("<Left>")
    nvim.wait_for(lambda: nvim.ghost() is None, "clear on cursor move")
    request_and_wait(nvim)
    if nvim.ghost() is not None:
        nvim.feed("<Esc>")
        nvim.wait_for(lambda: nvim.ghost() is None, "clear on leaving insert mode")


def test_streamed_chunks_are_drawn_in_order_and_end_with_the_response(nvim: Nvim) -> None:
    request_id, text = type_until_suggestion(nvim)
    chunks = [c for c in nvim.tap()["chunks"] if c["params"]["requestId"] == request_id]
    assert chunks, "the server sent no lspCopilot/inlineCompletionChunk (streaming opt-in via initializationOptions)"
    assert chunks[-1]["params"]["done"] is True
    assert chunks[-1]["params"]["text"] == text
    drawn = []
    for chunk in chunks:
        params = chunk["params"]
        if params["text"]:
            # The plugin draws each chunk as it arrives: what is on screen right after it equals the chunk's text.
            assert chunk["ghost_after"] is not None, f"chunk {params['text']!r} was not drawn"
            assert chunk["ghost_after"]["text"] == params["text"]
            drawn.append(params["text"])
    assert drawn and drawn[-1] == text
    assert len(set(drawn)) >= 2 or len(text) <= 2, f"no streaming seen: {drawn!r}"
    assert [c["t"] for c in chunks] == sorted(c["t"] for c in chunks)
    response = responses(nvim, request_id)[0]
    assert response["ghost_after"]["text"] == text


def test_a_cancelled_request_never_paints_stale_text(nvim: Nvim) -> None:
    _, _shown = type_until_suggestion(nvim)
    nvim.feed("<C-]>")
    nvim.wait_for(lambda: nvim.ghost() is None, "dismiss")
    # Request A, then a keystroke before it can finish: A is cancelled, nothing of it may be drawn afterwards.
    sent = len(inline_requests(nvim))
    nvim.lua("require('lsp_copilot').suggest(); vim.api.nvim_input('Q')")
    stale_id = int(inline_requests(nvim)[sent]["id"])
    nvim.wait_for(lambda: nvim.line().endswith("Q"), "the keystroke")
    cancel = nvim.wait_for(lambda: [c for c in nvim.tap()["cancels"] if c["id"] == stale_id],
                           f"$/cancelRequest for {stale_id}")[0]
    nvim.wait_for(lambda: responses(nvim, stale_id), "the cancelled request's response")
    time.sleep(0.2)  # let any chunk still in the pipe arrive
    tap = nvim.tap()
    late = [c for c in tap["chunks"] if c["params"]["requestId"] == stale_id and c["t"] >= cancel["t"]]
    late += [r for r in tap["responses"] if r["id"] == stale_id]
    assert late, "the cancelled request sent nothing after the cancel"
    for message in late:
        assert message["ghost_after"] is None, f"stale message painted: {message}"
    assert len(inline_requests(nvim)) == sent + 1  # auto trigger is off: no request besides A
    # A fresh request B is drawn; a late chunk of A (replayed, as a slow pipe would deliver it) changes nothing.
    fresh_id, fresh_text = request_and_wait(nvim)
    if not fresh_text:
        return
    nvim.wait_for(lambda: nvim.ghost(), "request B's ghost text")
    last_b = next(c["params"] for c in reversed(nvim.tap()["chunks"]) if c["params"]["requestId"] == fresh_id)
    for stale in (dict(last_b, requestId=stale_id, text=fresh_text + "STALE", done=False),
                  dict(last_b, version=last_b["version"] - 1, text=fresh_text + "OLD", done=False)):
        after = nvim.lua("return _G.tap.replay_chunk(...)", stale)
        assert after is not None and after["text"] == fresh_text


def test_accept_word_and_accept_line_insert_a_prefix_and_keep_the_rest(nvim: Nvim) -> None:
    _, text = type_until_suggestion(nvim)
    before = nvim.text()
    word = nvim.lua("return require('lsp_copilot.suggest').next_word(...)", text)
    nvim.feed("<M-Right>")
    nvim.wait_for(lambda: nvim.text() == before + word, "accept word")
    rest = text[len(word):]
    if not rest:
        return
    assert nvim.ghost()["text"] == rest  # type: ignore[index]
    line = nvim.lua("return require('lsp_copilot.suggest').next_line(...)", rest)
    nvim.feed("<M-C-Right>")
    nvim.wait_for(lambda: nvim.text() == before + word + line, "accept line")
    if rest[len(line):]:
        assert nvim.ghost()["text"] == rest[len(line):]  # type: ignore[index]


def test_commands_status_toggle_disable_enable_and_log(nvim: Nvim) -> None:
    open_file(nvim, "x = 1\n")
    status = nvim.lua("return require('lsp_copilot').status()")
    assert "enabled" in status and "server ready" in status
    nvim.nvim.command("LspCopilot disable")
    assert nvim.lua("return require('lsp_copilot').is_enabled()") is False
    assert "disabled" in nvim.lua("return require('lsp_copilot').status()")
    nvim.feed("Go")
    nvim.wait_for(lambda: nvim.mode() == "i", "insert mode")
    sent = len(inline_requests(nvim))
    assert nvim.lua("return require('lsp_copilot').suggest()") is False
    assert len(inline_requests(nvim)) == sent
    nvim.feed("<Esc>")
    nvim.nvim.command("LspCopilot toggle")
    assert nvim.lua("return require('lsp_copilot').is_enabled()") is True
    nvim.nvim.command("LspCopilot toggle")
    nvim.nvim.command("LspCopilot enable")
    assert nvim.lua("return require('lsp_copilot').is_enabled()") is True
    nvim.nvim.command("LspCopilot log")
    log = nvim.nvim.current.buffer[:]
    assert log[0].startswith("# lsp-copilot events")
    assert any(" disable " in line for line in log) and any(" enable " in line for line in log)
    nvim.nvim.command("close")


def test_checkhealth_reports_the_running_server(nvim: Nvim) -> None:
    open_file(nvim, "x = 1\n")
    nvim.nvim.command("checkhealth lsp_copilot")
    report = "\n".join(nvim.nvim.current.buffer[:])
    nvim.nvim.command("bwipeout")
    assert "lsp-copilot" in report
    assert "server running" in report and "state ready" in report
    assert "ERROR" not in report
