"""`lsp-copilot bench context`: incremental reparse and context latency on a 10,000-line Python and a 5,000-line
TypeScript file after random one-character edits (goal: p99 of reparse + context at most 10 ms)."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_copilot.context import ContextBuilder, ContextSettings, estimate_tokens
from lsp_copilot.documents import Document, DocumentStore

GOAL_P99_MS = 10.0
_WORDS = ("order", "item", "price", "user", "account", "cache", "value", "total", "index", "node", "record", "buffer",
          "config", "event", "token", "stream", "result", "payload", "session", "queue", "entry", "shape", "batch")
_EDIT_CHARS = "abcdefghijklmnopqrstuvwxyz_0123456789 ().,:=[]{}'\"+-*\n"


def _name(rng: random.Random, parts: int = 2) -> str:
    return "_".join(rng.choice(_WORDS) for _ in range(parts))


def _camel(rng: random.Random, parts: int = 2) -> str:
    words = [rng.choice(_WORDS) for _ in range(parts)]
    return words[0] + "".join(w.title() for w in words[1:])


def generate_python(lines: int, seed: int) -> str:
    """A deterministic Python module of about `lines` lines: imports, classes with docstrings and methods, functions."""
    rng = random.Random(seed)
    out = ['"""Generated module for the context benchmark."""', "", "from __future__ import annotations", "",
           "import json", "import os", "from collections import defaultdict", "from dataclasses import dataclass",
           "from typing import Any", "", ""]
    n = 0
    while len(out) < lines:
        n += 1
        cls = f"{_camel(rng).title()}{n}"
        out += ["@dataclass", f"class {cls}:", f'    """Holds the {rng.choice(_WORDS)} state of part {n}."""', "",
                f"    {_name(rng)}: int = {rng.randint(0, 99)}",
                f"    {_name(rng)}: str = \"{rng.choice(_WORDS)}\"", ""]
        for _ in range(rng.randint(3, 6)):
            meth, arg, var = _name(rng), rng.choice(_WORDS), _name(rng)
            out += [f"    def {meth}(self, {arg}: list[int], limit: int = {rng.randint(1, 50)}) -> int:",
                    f'        """Return the {rng.choice(_WORDS)} of `{arg}` up to `limit`."""',
                    f"        {var} = 0",
                    f"        for i, x in enumerate({arg}):",
                    "            if i >= limit:",
                    "                break",
                    f"            {var} += x * {rng.randint(1, 9)}",
                    f"        return {var}", ""]
        fn = _name(rng, 3)
        out += ["", f"def {fn}(data: dict[str, Any], path: str) -> {cls}:",
                f'    """Load a {cls} from `data` and save it at `path`."""',
                f"    obj = {cls}()", "    with open(os.path.join(path, 'out.json'), 'w') as f:",
                "        json.dump(data, f)", "    groups = defaultdict(list)",
                "    for key, value in data.items():", "        groups[key].append(value)", "    return obj", "", ""]
    return "\n".join(out[:lines]) + "\n"


def generate_typescript(lines: int, seed: int) -> str:
    """A deterministic TypeScript module of about `lines` lines: imports, interfaces, classes, exported functions."""
    rng = random.Random(seed)
    out = ["import { readFileSync } from 'fs';", "import * as path from 'path';",
           "import { EventEmitter } from 'events';", ""]
    n = 0
    while len(out) < lines:
        n += 1
        iface, cls = f"{_camel(rng).title()}Options{n}", f"{_camel(rng).title()}Service{n}"
        out += [f"/** Options of {cls}. */", f"export interface {iface} {{",
                *(f"  {_camel(rng)}: {rng.choice(['number', 'string', 'boolean'])};" for _ in range(rng.randint(2, 5))),
                "}", "", f"export class {cls} extends EventEmitter {{", "  private items: number[] = [];", "",
                f"  constructor(private readonly options: {iface}) {{", "    super();", "  }", ""]
        for _ in range(rng.randint(3, 6)):
            meth, arg = _camel(rng), rng.choice(_WORDS)
            out += [f"  /** Sums the {rng.choice(_WORDS)} of `{arg}`. */",
                    f"  {meth}({arg}: number[], limit = {rng.randint(1, 50)}): number {{",
                    "    let total = 0;", f"    for (let i = 0; i < Math.min({arg}.length, limit); i++) {{",
                    f"      total += {arg}[i] * {rng.randint(1, 9)};", "    }",
                    f"    this.emit('{rng.choice(_WORDS)}', total);", "    return total;", "  }", ""]
        out += ["}", "", f"export function load{n}(file: string): {cls} {{",
                "  const raw = JSON.parse(readFileSync(path.join(__dirname, file), 'utf8'));",
                f"  return new {cls}(raw as {iface});", "}", ""]
    return "\n".join(out[:lines]) + "\n"


@dataclass
class _Timings:
    reparse: list[float]
    context: list[float]
    total: list[float]
    cpu: list[float] = field(default_factory=list)  # CPU time of the editing thread for edit + context
    stale: int = 0  # context builds that used the shifted old tree (the reparse was still running)
    catch_up: list[float] | None = None  # ms until the tree was fresh again, for those


def _percentiles(xs: list[float]) -> dict[str, float]:
    ordered = sorted(xs)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 3), "p99": round(p99, 3), "max": round(ordered[-1], 3)}


def _random_edit(doc: Document, rng: random.Random) -> tuple[tuple[int, int, int, int], str]:
    """A one-character insertion or deletion at a random place, as an LSP range (UTF-16 positions)."""
    line = rng.randrange(doc.line_count)
    length = len(doc.line_text(line))
    col = rng.randint(0, length)
    if rng.random() < 0.5 and length > 0:
        col = min(col, length - 1)
        return (line, col, line, col + 1), ""
    return (line, col, line, col), rng.choice(_EDIT_CHARS)


def _inverse(doc: Document, edit: tuple[tuple[int, int, int, int], str]) -> tuple[tuple[int, int, int, int], str]:
    """The one-character edit that undoes `edit` (computed before it is applied)."""
    (line, col, _, _), new_text = edit
    if new_text == "\n":
        return (line, col, line + 1, 0), ""
    if new_text:
        return (line, col, line, col + 1), ""
    return (line, col, line, col), doc.line_text(line)[col]


def _step(doc: Document, store: DocumentStore, builder: ContextBuilder,
          edit: tuple[tuple[int, int, int, int], str], t: _Timings | None) -> None:
    """Apply one edit, then build the context at the cursor after it; record the times in `t`."""
    (line, col, _, _), new_text = edit
    cpu_start = time.thread_time()
    start = time.perf_counter()
    doc.apply_change(edit[0], new_text, doc.version + 1)
    parsed = time.perf_counter()
    offset = doc.offset_at(line + 1, 0) if new_text == "\n" else doc.offset_at(line, col + len(new_text))
    ctx = builder.build(doc, offset, store)
    done = time.perf_counter()
    cpu = (time.thread_time() - cpu_start) * 1000
    stale = not doc.fresh or any("reparsed" in note for note in ctx.notes)
    if stale:
        doc.wait_fresh(10.0)  # the next edit starts from a settled document, as after a typing pause
    if t is not None:
        t.reparse.append((parsed - start) * 1000)
        t.context.append((done - parsed) * 1000)
        t.total.append((done - start) * 1000)
        t.cpu.append(cpu)
        if stale:
            t.stale += 1
            t.catch_up = [*(t.catch_up or []), (time.perf_counter() - start) * 1000]


def _measure(doc: Document, store: DocumentStore, builder: ContextBuilder, edits: int, rng: random.Random,
             accumulate: bool, warmup: int = 10) -> _Timings:
    """`edits` measured edits. Default: each random edit is followed by its undo (also a one-character edit, also
    measured), so the file stays the realistic code it was; `accumulate` keeps every edit (random damage piles up)."""
    t = _Timings([], [], [])
    measured = 0
    while measured < edits + warmup:
        edit = _random_edit(doc, rng)
        undo = _inverse(doc, edit)
        _step(doc, store, builder, edit, t if measured >= warmup else None)
        measured += 1
        if not accumulate:
            _step(doc, store, builder, undo, t if measured >= warmup else None)
            measured += 1
    return t


def _token_counter() -> tuple[Callable[[str], int], str]:
    """The embedded model's tokenizer when it is there (what the server counts with), else the estimate."""
    candidate = Path(__file__).resolve().parent.parent / "models" / "target" / "tokenizer.json"
    if not candidate.exists():
        return estimate_tokens, "estimate (3.5 chars/token)"
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(candidate))
    return (lambda text: len(tok.encode(text, add_special_tokens=False).ids)), "embedded tokenizer"


def run_context_bench(as_json: bool, seed: int = 0, edits: int = 300, accumulate: bool = False,
                      settings: ContextSettings | None = None, background_parse: bool = True) -> dict[str, Any]:
    """Time reparse and reparse + context after random one-character edits; print and return the figures (ms).

    background_parse=False parses synchronously in the editing thread (the cost of tree-sitter itself, every edit
    waiting for its reparse); by default reparses run in the DocumentStore's parse worker, as in the server.
    """
    count, counter_name = _token_counter()
    sources = {"python": ("/bench/big_module.py", generate_python(10_000, seed)),
               "typescript": ("/bench/big_service.ts", generate_typescript(5_000, seed))}
    store = DocumentStore(parse_budget_s=0.0 if background_parse else None)
    docs = {lang: store.open(Path(path).as_uri(), lang, 0, text) for lang, (path, text) in sources.items()}
    builder = ContextBuilder(settings or ContextSettings(enable_index=False), count)
    rng = random.Random(seed)
    report: dict[str, Any] = {"goal_p99_ms": GOAL_P99_MS, "token_counter": counter_name, "edits": edits,
                              "mode": "accumulate" if accumulate else "edit-and-undo",
                              "tree_wait_ms": builder.settings.tree_wait_ms, "background_parse": background_parse,
                              "languages": {}}
    for lang, doc in docs.items():
        parser = builder.registry.parser(lang)
        assert parser is not None
        data = doc.text.encode()
        full_start = time.perf_counter()
        parser.parse(data)  # a full parse, for comparison
        full_ms = (time.perf_counter() - full_start) * 1000
        doc.wait_fresh(30.0)
        t = _measure(doc, store, builder, edits, rng, accumulate)
        report["languages"][lang] = {
            "lines": doc.line_count, "bytes": len(doc.text.encode()), "full_parse_ms": round(full_ms, 2),
            "reparse_ms": _percentiles(t.reparse), "context_ms": _percentiles(t.context),
            "reparse_plus_context_ms": _percentiles(t.total),
            "editing_thread_cpu_ms": _percentiles(t.cpu),
            "within_goal_share": round(sum(x <= GOAL_P99_MS for x in t.total) / max(1, len(t.total)), 3),
            "stale_tree_share": round(t.stale / max(1, len(t.total)), 3),
            "background_reparse_ms": _percentiles(t.catch_up) if t.catch_up else None,
        }
    report["pass"] = all(v["reparse_plus_context_ms"]["p99"] <= GOAL_P99_MS for v in report["languages"].values())
    print(json.dumps(report, indent=2) if as_json else format_report(report))
    return report


def format_report(report: dict[str, Any]) -> str:
    """The figures as a small table."""
    rows = [f"context bench: {report['edits']} random one-character edits per file ({report['mode']}, "
            f"{'background' if report['background_parse'] else 'synchronous'} reparse), tokens by "
            f"{report['token_counter']}; goal p99(reparse + context) <= {report['goal_p99_ms']} ms; times in ms",
            f"{'file':<12}{'lines':>7}{'full parse':>12}{'reparse p50/p99':>20}{'context p50/p99':>20}"
            f"{'total p50/p99':>20}{'cpu p50/p99':>18}"]
    for lang, v in report["languages"].items():
        def pair(key: str, v: dict[str, Any] = v) -> str:
            return f"{v[key]['p50']:.2f} / {v[key]['p99']:.2f}"
        rows.append(f"{lang:<12}{v['lines']:>7}{v['full_parse_ms']:>10.1f}ms{pair('reparse_ms'):>20}"
                    f"{pair('context_ms'):>20}{pair('reparse_plus_context_ms'):>20}{pair('editing_thread_cpu_ms'):>18}")
        rows.append(f"{'':<12}{v['within_goal_share']:.1%} of the edits took at most {report['goal_p99_ms']} ms")
        if v["background_reparse_ms"]:
            rows.append(f"{'':<12}{v['stale_tree_share']:.0%} of the contexts used the shifted old tree; the "
                        f"background reparse finished after p50 {v['background_reparse_ms']['p50']:.1f} ms")
    rows.append("PASS" if report["pass"] else "FAIL: p99 above the goal")
    return "\n".join(rows)
