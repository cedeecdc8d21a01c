"""The evaluation sandbox: correct programs pass; loops, memory bombs, network and escapes fail within the limits."""

from __future__ import annotations

import time
from pathlib import Path

from lsp_copilot.evaluation.sandbox import SandboxLimits, run_program, run_programs

FAST = SandboxLimits(wall_seconds=3.0, cpu_seconds=3, memory_bytes=512 << 20)


def test_a_correct_program_passes() -> None:
    result = run_program("def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n", FAST)
    assert result.passed and result.status == "passed" and result.returncode == 0


def test_a_failing_assertion_fails_with_its_traceback() -> None:
    result = run_program("assert 1 + 1 == 3, 'arithmetic'\n", FAST)
    assert not result.passed and result.status == "failed"
    assert "AssertionError: arithmetic" in result.stderr


def test_an_infinite_loop_is_stopped_and_reported_as_a_timeout() -> None:
    start = time.monotonic()
    result = run_program("while True:\n    pass\n", FAST)
    assert not result.passed and result.status in ("timeout", "killed")
    assert time.monotonic() - start < FAST.wall_seconds + 5


def test_a_sleeping_program_is_killed_at_the_wall_time_limit() -> None:
    # sleeping uses no CPU, so only the wall-clock limit and the process-group kill can stop it
    result = run_program("import time\ntime.sleep(60)\n", SandboxLimits(wall_seconds=1.0))
    assert result.status == "timeout" and result.returncode is None and result.seconds < 10


def test_a_memory_bomb_fails_on_the_memory_limit() -> None:
    result = run_program("x = bytearray(4 * 1024 ** 3)\n", FAST)
    assert not result.passed and result.status == "memory"


def test_a_growing_memory_bomb_fails() -> None:
    result = run_program("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 ** 2))\n", FAST)
    assert not result.passed and result.status in ("memory", "timeout", "killed")


def test_the_network_is_unreachable() -> None:
    program = "import socket\ns = socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
    result = run_program(program, FAST)
    assert not result.passed and result.status == "failed"


def test_processes_and_file_removal_are_refused() -> None:
    for program in ("import os\nos.system('true')\n", "import subprocess\nsubprocess.run(['true'])\n",
                    "import shutil\nshutil.rmtree('/tmp')\n"):
        result = run_program(program, FAST)
        assert not result.passed and "PermissionError" in result.stderr, program


def test_the_child_runs_in_a_fresh_temp_dir_with_a_clean_environment(tmp_path: Path) -> None:
    program = (
        "import os, sys\n"
        "assert os.path.basename(os.getcwd()).startswith('lsp-copilot-sandbox-'), os.getcwd()\n"
        "assert 'HOME' not in os.environ and 'VIRTUAL_ENV' not in os.environ, dict(os.environ)\n"
        "assert sys.flags.isolated == 1\n"
        "open('left_behind.txt', 'w').write('x')\n"
        "sys.stderr.write(os.getcwd())\n"
    )
    result = run_program(program, FAST)
    assert result.passed, result.stderr
    sandbox_dir = Path(result.stderr.strip())
    assert sandbox_dir != tmp_path and sandbox_dir.is_absolute()
    assert not sandbox_dir.exists()  # removed with what the program left in it


def test_the_limits_are_lowered_in_the_child() -> None:
    program = (
        "import resource\n"
        f"assert resource.getrlimit(resource.RLIMIT_AS) == ({FAST.memory_bytes}, {FAST.memory_bytes})\n"
        f"assert resource.getrlimit(resource.RLIMIT_CPU)[1] == {FAST.cpu_seconds}\n"
    )
    result = run_program(program, FAST)
    assert result.passed, result.stderr


def test_run_programs_keeps_input_order_and_runs_duplicates_once() -> None:
    sources = ["raise SystemExit(0)\n", "raise SystemExit(3)\n", "raise SystemExit(0)\n"]
    results = run_programs(sources, FAST, workers=2)
    assert [r.passed for r in results] == [True, False, True]
    assert results[0] is results[2]  # the duplicate shares one run
    assert results[1].returncode == 3
