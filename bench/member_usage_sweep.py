"""The name guide's usage weight on call-site tasks, and the ablation without the index (docs/benchmarks.md).

python bench/member_usage_sweep.py --packages asyncio,xml,unittest,logging --weights 0,0.1,0.3,1 --after-dot
    (the choice of the default, on packages the model was trained on: tasks whose cursor follows `module.`)
python bench/member_usage_sweep.py --weights 0,0.1,0.3,1 --ablation
    (the held-out call-site tasks, all 90: the index at each weight, no index, and no index with the guide's names
    read from the file's own `module.x` uses)

Per condition: exact match, and the share of answers whose text up to the first `(` equals the expected one's.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from lsp_copilot.context.builder import ContextBuilder
from lsp_copilot.context.usage import MEMBER_ACCESS
from lsp_copilot.evaluation import crossfile
from lsp_copilot.evaluation.models import EMBEDDED_DIR, PipelineCompleter
from lsp_copilot.training.corpus import HELD_OUT_PACKAGES


def names_the_file_writes(text: str, offset: int, typed: str) -> list[str]:
    """Ablation for `ContextBuilder.exported_names`: the names the file itself writes after the cursor's qualifier
    (no index; unsound in the product, which could then never propose a name the file has not written yet)."""
    line_start = text.rfind("\n", 0, offset) + 1
    m = MEMBER_ACCESS.search(text[line_start:offset])
    if m is None:
        return []
    pattern = re.compile(rf"(?<![\w.]){re.escape(m.group(1) + m.group(2))}\.([A-Za-z_]\w*)")
    used = set(pattern.findall(text[:line_start])) | set(pattern.findall(text[offset:]))
    return sorted(n for n in used if n.startswith(typed))


def run(completer: PipelineCompleter, tasks: list[crossfile.CrossFileTask], workspace: crossfile.Workspace,
        index: bool, weight: float, ablation: bool = False) -> dict[str, float]:
    """Exact match and right name over `tasks` in one condition."""
    completer.settings.completion.member_usage_weight = weight
    original = ContextBuilder.exported_names
    cursor = {"offset": 0}

    def from_the_file(builder: ContextBuilder, doc: Any, store: Any, module: str, typed: str) -> list[str]:
        return names_the_file_writes(doc.text, cursor["offset"], typed)

    if ablation:
        ContextBuilder.exported_names = from_the_file  # type: ignore[method-assign,assignment]
    exact = name = 0
    try:
        for task in tasks:
            cursor["offset"] = task.offset
            with workspace.holding(task) as root:
                got = completer(task.query(root if index else None)).text.split("\n", 1)[0].strip()
            exact += got == task.expected
            name += got.split("(")[0] == task.expected.split("(")[0]
    finally:
        ContextBuilder.exported_names = original  # type: ignore[method-assign]
    return {"tasks": len(tasks), "exact": round(exact / len(tasks), 4), "name": round(name / len(tasks), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--packages", default=",".join(HELD_OUT_PACKAGES))
    p.add_argument("--weights", default="0,0.1")
    p.add_argument("--after-dot", action="store_true", help="only tasks whose cursor follows `module.`")
    p.add_argument("--ablation", action="store_true", help="also: no index, and names from the file's own uses")
    args = p.parse_args()
    tasks = crossfile.load_tasks(tuple(args.packages.split(",")), cursor="call")
    if args.after_dot:
        tasks = [t for t in tasks if t.text[: t.offset].endswith(".")]
    workspace = crossfile.Workspace(sorted({t.path.split("/", 1)[0] for t in tasks}))
    completer = PipelineCompleter(EMBEDDED_DIR / "target")
    report: dict[str, dict[str, float]] = {}
    try:
        for w in (float(x) for x in args.weights.split(",")):
            report[f"index, weight {w:g}"] = run(completer, tasks, workspace, True, w)
            print(json.dumps({f"index, weight {w:g}": report[f"index, weight {w:g}"]}), flush=True)
        if args.ablation:
            report["no index"] = run(completer, tasks, workspace, False, 0.1)
            report["no index, names the file writes (weight 0.1)"] = run(completer, tasks, workspace, False, 0.1,
                                                                          ablation=True)
    finally:
        workspace.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
