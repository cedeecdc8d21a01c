"""Cross-file evaluation: tasks that call a sibling module's definition, and the with/without-index comparison."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lsp_copilot.evaluation.completers import Completion, CompletionQuery
from lsp_copilot.evaluation.crossfile import (
    CrossFileSettings,
    CrossFileTask,
    TrainingStyleRetriever,
    Workspace,
    derive_package_tasks,
    discover_packages,
    load_tasks,
    package_sources,
    run_crossfile,
)
from lsp_copilot.evaluation.report import compare_details
from lsp_copilot.training.corpus import HELD_OUT_PACKAGES, is_held_out

HELPERS = '''\
"""Helpers."""


def helper(x):
    """Double x."""
    return 2 * x


class Thing:
    pass


def _private():
    return 1
'''

USER = '''\
"""Uses the helpers."""
from .helpers import helper as hlp
from toy import helpers
import toy.helpers


def local(y):
    return y


def work(z):
    a = hlp(z)
    b = helpers.Thing()
    c = local(a)
    d = hlp(a,
            b)
    e = toy.helpers.helper(1) + helpers._private()
    if helpers.missing(): pass
    return a
'''


@pytest.fixture()
def toy_root(tmp_path: Path) -> Path:
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "__init__.py").write_text('"""Toy package."""\nfrom toy.helpers import helper\n')
    (tmp_path / "toy" / "helpers.py").write_text(HELPERS)
    (tmp_path / "toy" / "user.py").write_text(USER)
    return tmp_path


def toy_tasks(root: Path) -> list[CrossFileTask]:
    return derive_package_tasks(package_sources(root / "toy", root))


def test_call_cursor_keeps_the_line_up_to_the_cross_file_name(toy_root: Path) -> None:
    tasks = derive_package_tasks(package_sources(toy_root / "toy", toy_root), cursor="call")
    by_line = {t.expected: t for t in tasks}
    assert set(by_line) == {"hlp(z)", "Thing()", "helper(1) + helpers._private()"}
    for task in tasks:
        line_start = task.text.rfind("\n", 0, task.offset) + 1
        typed = task.text[line_start:task.offset]
        assert typed.strip() in ("a =", "b = helpers.", "e = toy.helpers.")
        assert task.text[task.offset] == "\n"  # the rest of the line is the answer
    with pytest.raises(ValueError, match="cursor"):
        derive_package_tasks(package_sources(toy_root / "toy", toy_root), cursor="word")


def test_tasks_are_single_lines_calling_a_sibling_definition(toy_root: Path) -> None:
    by_line = {t.expected: t for t in toy_tasks(toy_root)}
    assert set(by_line) == {"a = hlp(z)", "b = helpers.Thing()", "e = toy.helpers.helper(1) + helpers._private()"}
    assert by_line["a = hlp(z)"].callees == ("toy.helpers.helper",)
    assert by_line["b = helpers.Thing()"].callees == ("toy.helpers.Thing",)
    assert by_line["e = toy.helpers.helper(1) + helpers._private()"].callees == (
        "toy.helpers._private", "toy.helpers.helper")


def test_a_task_text_is_the_file_without_the_line(toy_root: Path) -> None:
    for task in toy_tasks(toy_root):
        original = (toy_root / task.path).read_text()
        assert task.expected not in task.text
        assert task.text[: task.offset] + task.expected + task.text[task.offset :] == original
        assert task.text[task.offset] == "\n" and task.text[task.offset - 4 : task.offset] == "    "


def test_the_held_out_packages_give_a_fixed_task_set() -> None:
    tasks = load_tasks()
    assert len(tasks) == 90
    assert {t.path.split("/")[0] for t in tasks} == set(HELD_OUT_PACKAGES)
    assert all(is_held_out(t.path) for t in tasks)  # the models never trained on these files
    assert all(t.callees and t.expected for t in tasks)
    assert len({t.task_id for t in tasks}) == len(tasks)


def test_the_workspace_holds_the_task_text_only_while_the_task_runs(toy_root: Path) -> None:
    task = toy_tasks(toy_root)[0]
    workspace = Workspace(["toy"], toy_root)
    try:
        file = workspace.root / task.path
        original = file.read_text()
        with workspace.holding(task) as root:
            assert root == workspace.root and file.read_text() == task.text
        assert file.read_text() == original
    finally:
        workspace.close()
    assert not workspace.root.exists()


class GrepCompleter:
    """A fake 'index': with a workspace, finds a name the line should call among the workspace's other files."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.seen_workspaces: list[Path | None] = []

    def __call__(self, query: CompletionQuery) -> Completion:
        self.seen_workspaces.append(query.workspace)
        answer = self.answers[query.prefix]
        if query.workspace is None:
            return Completion("pass")
        on_disk = (query.workspace / query.path).read_text()
        assert on_disk == query.text, "the index must see the task's text, never the removed line"
        others = [p.read_text() for p in query.workspace.rglob("*.py") if p != query.workspace / query.path]
        known = any(f"def {n}" in t or f"class {n}" in t for t in others for n in ("helper", "Thing"))
        return Completion(answer if known else "pass", 3)


def test_the_index_condition_is_the_only_difference(toy_root: Path, tmp_path: Path) -> None:
    tasks = toy_tasks(toy_root)
    fake = GrepCompleter({t.text[: t.offset]: t.expected for t in tasks})
    out = io.StringIO()
    details = tmp_path / "details.jsonl"
    report = run_crossfile(
        limit=None, as_json=True, completer=fake, out=out,
        settings=CrossFileSettings(packages=("toy",), source_root=toy_root, progress=False, details=details),
    )
    # --details: both conditions, task by task; `eval compare` pairs them as the report does
    compared = compare_details(details, details, "with workspace index")
    assert compared["turned_right"] == [] and compared["after"] == 3
    conditions = compare_details(details, details, "without workspace index", after_system="with workspace index")
    assert conditions["turned_right"] == [t.task_id for t in tasks]
    assert {k: conditions[k] for k in ("gained", "lost", "p_value")} == report["exact_paired"]
    rows = [json.loads(line) for line in details.read_text().splitlines()]
    assert [(r["system"], r["exact"]) for r in rows] == [("without workspace index", False)] * 3 + [
        ("with workspace index", True)] * 3
    assert [r["task"] for r in rows[:3]] == [t.task_id for t in tasks]
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == report
    off, on = report["systems"]
    assert off["name"] == "without workspace index" and off["exact_match"] == 0.0
    assert on["name"] == "with workspace index" and on["exact_match"] == 1.0
    assert report["exact_match_gain"] == 1.0 and report["tasks"] == len(tasks) == 3
    assert (off["extra"]["callee_match"], on["extra"]["callee_match"], report["callee_match_gain"]) == (0.0, 1.0, 1.0)
    assert report["exact_paired"] == {"gained": 3, "lost": 0, "p_value": 0.25}  # 2 / 2^3: three tasks prove little
    assert fake.seen_workspaces[:3] == [None, None, None] and all(fake.seen_workspaces[3:])


def test_paired_counts_the_tasks_each_condition_alone_gets_right_and_their_mcnemar_p_value() -> None:
    from lsp_copilot.evaluation.report import paired

    assert paired([False] * 10, [True] * 10) == {"gained": 10, "lost": 0, "p_value": 0.002}  # 2 / 2^10
    assert paired([True, False, True], [False, True, True]) == {"gained": 1, "lost": 1, "p_value": 1.0}
    assert paired([True] * 4, [True] * 4) == {"gained": 0, "lost": 0, "p_value": 1.0}  # no discordant task
    assert paired([False] * 12, [True] * 11 + [False])["p_value"] == 0.001  # 2 / 2^11 = 0.00098
    with pytest.raises(ValueError):
        paired([True], [])


def test_callee_match_needs_every_name_the_expected_line_calls(toy_root: Path) -> None:
    from lsp_copilot.evaluation.completers import Completion, TimedCompletion
    from lsp_copilot.evaluation.crossfile import callee_match

    task = next(t for t in toy_tasks(toy_root) if t.expected == "a = hlp(z)")  # `helper`, imported as `hlp`
    texts = ("y = hlp(2)", "y = hlp_other(2)", "y = hlp", "pass")
    assert [callee_match([task], [TimedCompletion(Completion(t), 0.0)]) for t in texts] == [1.0, 0.0, 0.0, 0.0]


def test_training_style_retrieval_finds_the_called_definition(toy_root: Path) -> None:
    task = next(t for t in toy_tasks(toy_root) if t.expected == "b = helpers.Thing()")
    retriever = TrainingStyleRetriever()
    assert retriever(task.query(None)) == []
    blocks = retriever(task.query(toy_root))
    assert blocks and blocks[0][0] == "toy/helpers.py"
    assert 'def helper(x):\n    """Double x."""' in blocks[0][1]


def test_an_unknown_package_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nosuchpkg"):
        load_tasks(("nosuchpkg",), tmp_path)


def test_a_source_root_is_read_for_every_package_directly_under_it(toy_root: Path) -> None:
    (toy_root / "notes").mkdir()  # no __init__.py: not a package
    (toy_root / "toy-1.0.dist-info").mkdir()
    (toy_root / "toy-1.0.dist-info" / "__init__.py").write_text("")  # not an importable name
    (toy_root / "plain").mkdir()
    (toy_root / "plain" / "__init__.py").write_text("x = 1\n")  # a package without cross-file calls
    assert discover_packages(toy_root) == ("plain", "toy")
    settings = CrossFileSettings(source_root=toy_root, progress=False)
    assert settings.chosen_packages() == ("plain", "toy")
    assert CrossFileSettings().chosen_packages() == HELD_OUT_PACKAGES
    assert CrossFileSettings(source_root=toy_root, packages=("toy",)).chosen_packages() == ("toy",)
    tasks = toy_tasks(toy_root)
    report = run_crossfile(completer=GrepCompleter({t.text[: t.offset]: t.expected for t in tasks}),
                           settings=settings, out=io.StringIO())
    assert report["packages"] == {"toy": 3} and report["source_root"] == str(toy_root)


def test_a_source_root_without_packages_or_tasks_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory"):
        discover_packages(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no Python package"):
        discover_packages(tmp_path)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "__init__.py").write_text("def f():\n    return 1\n")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        run_crossfile(settings=CrossFileSettings(source_root=tmp_path, progress=False), out=io.StringIO())



def test_context_recall_needs_every_called_definition_in_the_prompt(toy_root: Path) -> None:
    from lsp_copilot.evaluation.completers import Completion, TimedCompletion
    from lsp_copilot.evaluation.crossfile import context_recall

    task = next(t for t in toy_tasks(toy_root) if t.expected == "a = hlp(z)")  # calls toy.helpers.helper
    shown = ('toy/helpers.py\ndef helper(x):\n    """Double x."""', "toy/helpers.py\ndef helper_two(x): ...", "")
    assert [context_recall([task], [TimedCompletion(Completion("", 0, c), 0.0)]) for c in shown] == [1.0, 0.0, 0.0]


def test_the_server_pipeline_on_the_embedded_model_reports_what_retrieval_showed(toy_root: Path) -> None:
    report = run_crossfile(settings=CrossFileSettings(packages=("toy",), source_root=toy_root, progress=False),
                           out=io.StringIO())
    off, on = report["systems"]
    assert report["completion_path"] == "pipeline" and report["tasks"] == 3
    assert off["extra"]["context_recall"] == 0.0  # the file alone: no other file's definitions
    assert on["extra"]["context_recall"] > 0.0 and report["context_recall"] == on["extra"]["context_recall"]
    # the model scores the expected lines in both conditions; the context changes the prompt, so the losses differ
    assert 0.0 < off["extra"]["answer_loss"] < 20.0 and 0.0 < on["extra"]["answer_loss"] < 20.0
    assert report["answer_loss_gain"] == round(off["extra"]["answer_loss"] - on["extra"]["answer_loss"], 4) != 0.0
    assert 0.0 <= report["answer_loss_lower"] <= 1.0


def test_answer_loss_is_the_models_own_likelihood_of_the_expected_line(toy_root: Path) -> None:
    from lsp_copilot.evaluation.models import EMBEDDED_DIR, PipelineCompleter

    completer = PipelineCompleter(EMBEDDED_DIR / "target")
    task = next(t for t in toy_tasks(toy_root) if t.expected == "a = hlp(z)")
    greedy = completer(task.query(None)).text
    # what greedy decoding wrote is more likely to the model than a line it did not write
    assert greedy and completer.answer_loss(task.query(None), greedy) < completer.answer_loss(
        task.query(None), "zq.quux_frobnicate(77, 'xx')")
    engine = completer.model.engine
    logprobs = engine.continuation_logprobs(completer.prepare(task.query(None))[1].prompt, greedy)
    assert len(logprobs) == engine.count_tokens(greedy) and all(lp <= 0.0 for lp in logprobs)
    assert completer(task.query(None)).text == greedy  # scoring left the engine exact


def test_edit_similarity_rewards_getting_closer(toy_root: Path) -> None:
    from lsp_copilot.evaluation.completers import Completion, TimedCompletion
    from lsp_copilot.evaluation.crossfile import edit_similarity

    task = next(t for t in toy_tasks(toy_root) if t.expected == "a = hlp(z)")
    scores = [edit_similarity([task], [TimedCompletion(Completion(t), 0.0)]) for t in ("a = hlp(z)", "a = hl(z)", "")]
    assert scores[0] == 1.0 and 0.5 < scores[1] < 1.0 and scores[2] == 0.0
