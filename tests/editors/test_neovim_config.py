"""The Neovim plugin without a model: layout, setup validation, wire settings, renderer, fallback keys (real Neovim)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "editor_clients" / "neovim" / "tests"))
from harness import PLUGIN_DIR, Nvim, NvimOptions


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Nvim]:
    """Neovim with the plugin on the runtimepath and setup() not called."""
    n = Nvim(tmp_path, NvimOptions(setup=None, timeout_s=10))
    yield n
    n.close()


def test_plugin_file_registers_the_command_without_loading_the_module(bare: Nvim) -> None:
    assert bare.lua("return vim.fn.exists(':LspCopilot')") == 2
    assert bare.lua("return package.loaded['lsp_copilot'] == nil")
    completions = bare.lua("return vim.fn.getcompletion('LspCopilot ', 'cmdline')")
    assert set(completions) >= {"enable", "disable", "toggle", "status", "log"}


def test_every_module_opens_with_a_one_line_comment() -> None:
    for path in [*sorted((PLUGIN_DIR / "lua").rglob("*.lua")), PLUGIN_DIR / "plugin" / "lsp_copilot.lua"]:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("--"), f"{path} does not open with a comment"


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ("{ debounce = 10 }", "unknown option debounce"),
        ("{ keymaps = { acept = '<Tab>' } }", "unknown option keymaps.acept"),
        ("{ debounce_ms = -1 }", "debounce_ms"),
        ("{ cmd = {} }", "cmd"),
        ("{ cmd = 'lsp-copilot serve' }", "cmd"),
        ("{ filetypes = 'python' }", "filetypes"),
        ("{ keymaps = { accept = 1 } }", "keymaps.accept"),
        ("{ settings = 3 }", "settings"),
    ],
)
def test_setup_rejects_bad_options_with_a_clear_error(bare: Nvim, opts: str, message: str) -> None:
    ok, err = bare.lua(f"return {{ pcall(require('lsp_copilot').setup, {opts}) }}")
    assert ok is False
    assert err.startswith("lsp_copilot.setup: ") and message in err
    # Nothing was set up by the failed call.
    assert bare.lua("return require('lsp_copilot').plugin() == nil")


def test_server_command_variants(bare: Nvim) -> None:
    cmd = bare.lua("""
        local c = require('lsp_copilot.config')
        return { c.server_cmd(c.resolve({})), c.server_cmd(c.resolve({ python = '/py' })),
                 c.server_cmd(c.resolve({ cmd = { 'x', 'serve', '--tcp', '9' }, python = '/py' })) }
    """)
    assert cmd == [["lsp-copilot", "serve"], ["/py", "-m", "lsp_copilot", "serve"], ["x", "serve", "--tcp", "9"]]


def test_client_config_passes_the_settings_through_and_opts_in_to_streaming(bare: Nvim) -> None:
    encoded = bare.lua("""
        local cfg = require('lsp_copilot.config').resolve({
            python = '/py', settings = { completion = { maxTokens = 64 }, disabledLanguages = {}, context = {} } })
        local c = require('lsp_copilot.client').client_config(cfg, 0, { on_chunk = print, on_status = print })
        return { vim.json.encode(c.init_options), vim.json.encode(c.settings),
                 c.capabilities.experimental.lspCopilot.streaming, c.name }
    """)
    init_options, settings, streaming, name = encoded
    import json

    assert json.loads(init_options) == {"streaming": True, "completion": {"maxTokens": 64}, "disabledLanguages": [],
                                        "context": {}}
    assert '"context":{}' in init_options  # an empty map stays a JSON object
    assert json.loads(settings) == {"lspCopilot": {"completion": {"maxTokens": 64}, "disabledLanguages": [],
                                                   "context": {}}}
    assert streaming is True and name == "lsp_copilot"


@pytest.mark.parametrize(
    ("text", "word", "line"),
    [
        ("foo(bar)\n    baz", "foo", "foo(bar)"),
        (" + b", " +", " + b"),
        ("\n    return x", "\n    ", "\n    return x"),
        ("_x1 = 2", "_x1", "_x1 = 2"),
        ("(", "(", "("),
    ],
)
def test_next_word_and_next_line(bare: Nvim, text: str, word: str, line: str) -> None:
    got = bare.lua("local s = require('lsp_copilot.suggest'); return { s.next_word(...), s.next_line(...) }", text)
    assert got == [word, line]


def test_ghost_renderer_draws_first_line_inline_and_the_rest_as_virtual_lines(bare: Nvim) -> None:
    bare.nvim.current.buffer[:] = ["x = foo(", "y"]
    got = bare.lua("""
        local g = require('lsp_copilot.ghost').new()
        g:show(0, 0, 8, 'a, b)\\n\\tz = 1\\n', nil)
        local marks = vim.api.nvim_buf_get_extmarks(0, g.ns, 0, -1, { details = true })
        local read = g:read(0)
        g:show(0, 0, 8, 'c)', nil)  -- a redraw replaces, never adds
        local count = #vim.api.nvim_buf_get_extmarks(0, g.ns, 0, -1, {})
        local single = g:read(0)
        g:clear(0)
        return { marks[1][2], marks[1][3], marks[1][4].virt_text_pos, marks[1][4].virt_text[1][2], read,
                 count, single, g:read(0), g:visible(0), vim.api.nvim_get_namespaces().lsp_copilot == g.ns }
    """)
    row, col, pos, hl, read, count, single, after_clear, visible, same_ns = got
    assert (row, col, pos, hl) == (0, 8, "inline", "LspCopilotSuggestion")
    assert read == "a, b)\n    z = 1\n"  # the tab is drawn as `tabstop` spaces
    assert count == 1 and single == "c)"
    assert after_clear == "" and visible is False and same_ns is True
    assert bare.lua("return vim.api.nvim_get_hl(0, { name = 'LspCopilotSuggestion' }).link") == "Comment"


def test_tab_falls_back_to_a_normal_tab_when_no_server_is_attached(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    n = Nvim(tmp_path, NvimOptions(setup={"cmd": [sys.executable, "-c", "import sys; sys.exit(3)"]}, timeout_s=10))
    try:
        n.nvim.command(f"edit {tmp_path / 'a.py'}")
        n.feed("Go<Tab>y")
        n.wait_for(lambda: n.line() == "    y", "a tab then y")
        assert n.lua("return require('lsp_copilot').is_visible()") is False
    finally:
        n.close()


def test_a_missing_server_command_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    n = Nvim(tmp_path, NvimOptions(setup={"cmd": ["/nonexistent/lsp-copilot", "serve"]}, timeout_s=10))
    try:
        n.nvim.command(f"edit {tmp_path / 'a.py'}")
        messages = n.wait_for(lambda: n.lua("return vim.fn.execute('messages')"), "the error message")
        assert "/nonexistent/lsp-copilot" in messages and "not executable" in messages
        assert n.line() == "x = 1"
    finally:
        n.close()


def test_help_file_has_valid_unique_tags(bare: Nvim, tmp_path: Path) -> None:
    doc = tmp_path / "doc"
    doc.mkdir()
    (doc / "lsp_copilot.txt").write_bytes((PLUGIN_DIR / "doc" / "lsp_copilot.txt").read_bytes())
    bare.nvim.command(f"helptags {doc}")  # raises on duplicate tags
    tags = (doc / "tags").read_text(encoding="utf-8")
    for tag in ("lsp_copilot.txt", ":LspCopilot", "lsp_copilot-setup", "lsp_copilot-keys"):
        assert f"{tag}\t" in tags
