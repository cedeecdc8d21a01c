"""Command line entry point: serve, complete, context, bench, eval, train."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lsp_copilot import __version__

log = logging.getLogger("lsp_copilot")


# ---- shared options --------------------------------------------------------------------------------------------------
def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model directory (a Hugging Face causal LM); default: the embedded model")
    p.add_argument("--draft", help="draft model directory sharing the tokenizer; default: the embedded draft")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="where the model runs (default auto)")
    p.add_argument("--config", type=Path, help="settings file (TOML, the same tree as workspace/configuration)")
    p.add_argument("--log-file", help="also write the log to this file")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level (default info)")


def cli_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings layer given on the command line: the --config file, overlaid by the explicit flags."""
    from lsp_copilot.settings import read_toml

    layer: dict[str, Any] = read_toml(args.config) if getattr(args, "config", None) else {}
    model = layer.setdefault("model", {})
    for key in ("model", "draft", "device"):
        value = getattr(args, key, None)
        if value:
            model["path" if key == "model" else key] = str(Path(value).expanduser()) if key != "device" else value
    logs = layer.setdefault("log", {})
    if getattr(args, "log_file", None):
        logs["file"] = args.log_file
    if getattr(args, "log_level", None):
        logs["level"] = args.log_level
    return layer


def setup_logging(level: str = "info", file: str = "") -> None:
    """Log to stderr (never stdout: it may carry the protocol) and optionally to a file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file:
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pygls", "transformers", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))


def parse_location(spec: str) -> tuple[Path, int, int]:
    """`FILE:LINE:COL` (1-based, as compilers print them) -> (path, line, column)."""
    try:
        file, line, col = spec.rsplit(":", 2)
        return Path(file), int(line), int(col)
    except ValueError:
        raise SystemExit(f"error: expected FILE:LINE:COL (1-based), got {spec!r}") from None


# ---- serve -----------------------------------------------------------------------------------------------------------
def run_serve(args: argparse.Namespace) -> int:
    from lsp_copilot.server import create_server

    layer = cli_settings(args)
    setup_logging(layer.get("log", {}).get("level", "info"), layer.get("log", {}).get("file", ""))
    server = create_server(layer)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        log.info("lsp-copilot %s listening on %s:%s", __version__, host or "127.0.0.1", port)
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
    # pygls has stopped (after `exit`, or the client went away). Leave at once: a thread may still block on
    # reading stdin, and interpreter shutdown would wait for it while the client waits for us to exit.
    logging.shutdown()
    os._exit(0 if server.protocol._shutdown else 1)  # LSP: 0 after a shutdown request, else 1


# ---- complete / context ----------------------------------------------------------------------------------------------
def _open_file(spec: str) -> tuple[Any, Any, int]:
    """(document, store, offset) for FILE:LINE:COL, read from disk."""
    from lsp_copilot.documents import DocumentStore
    from lsp_copilot.languages import language_id_for_path

    path, line, col = parse_location(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"error: cannot read {path}: {exc}") from None
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or not 1 <= col <= len(lines[line - 1]) + 1:
        raise SystemExit(f"error: {path}:{line}:{col} is outside the file ({len(lines)} lines)")
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
    store = DocumentStore()
    doc = store.open(path.resolve().as_uri(), language_id_for_path(path), 0, text)
    return doc, store, offset


def _workspace_root(path: Path) -> Path:
    """The nearest directory above `path` holding .git (or pyproject.toml), else its own directory."""
    for parent in [path.parent, *path.parents]:
        if (parent / ".git").exists() or (parent / "pyproject.toml").exists():
            return parent
    return path.parent


def _context_builder(settings: Any, count_tokens: Any, doc: Any) -> Any:
    from lsp_copilot.context import ContextBuilder

    builder = ContextBuilder(settings.context, count_tokens)
    if doc.path is not None:
        builder.set_workspace([_workspace_root(doc.path)])
        builder.wait_until_indexed(timeout=30.0)
    return builder


def run_complete(args: argparse.Namespace) -> int:
    from lsp_copilot.pipeline import Pipeline, load_model
    from lsp_copilot.settings import build_settings

    settings, problems = build_settings(cli_settings(args))
    setup_logging(settings.log.level if args.verbose else "warning", settings.log.file)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    doc, store, offset = _open_file(args.location)
    try:
        model = load_model(settings)
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pipeline = Pipeline(model, _context_builder(settings, model.engine.count_tokens, doc), settings.completion)
    prepared = pipeline.prepare(doc, offset, store)
    run = pipeline.start(prepared)
    printed = ""
    for shown in run.iterate():
        stable = _common_prefix(printed, shown) if printed else ""
        if not args.json and stable == printed and len(shown) > len(printed):
            sys.stdout.write(shown[len(printed) :])
            sys.stdout.flush()
            printed = shown
    suggestion = run.suggestion()
    if args.json:
        print(json.dumps({"text": suggestion.text, "stop_reason": suggestion.stop_reason, "tokens": suggestion.tokens,
                          "multiline": prepared.ctx.multiline, **suggestion.stats,
                          "ranking": [asdict(r) for r in suggestion.ranking]}))
    else:
        if suggestion.text.startswith(printed):
            sys.stdout.write(suggestion.text[len(printed) :])
        else:  # post-processing took back text already printed: print the final suggestion whole
            sys.stdout.write("\n--- final ---\n" + suggestion.text)
        sys.stdout.write("\n")
    return 0


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def run_context(args: argparse.Namespace) -> int:
    from transformers import AutoConfig, AutoTokenizer

    from lsp_copilot.context.describe import describe_context, format_description
    from lsp_copilot.pipeline import resolve_model_dirs
    from lsp_copilot.prompts import detect_template, load_templates, render_prompt
    from lsp_copilot.settings import build_settings

    settings, _ = build_settings(cli_settings(args))
    setup_logging("warning")
    doc, store, offset = _open_file(args.location)
    model_dir, _ = resolve_model_dirs(settings)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        template = detect_template(tokenizer, AutoConfig.from_pretrained(model_dir),
                                   load_templates([Path(p) for p in settings.prompts.paths]),
                                   settings.model.template or None)
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    ctx = _context_builder(settings, count, doc).build(doc, offset, store)
    prompt = render_prompt(template, ctx)
    description = describe_context(ctx)
    description["template"] = template.family
    description["prompt"] = prompt
    description["prompt_tokens"] = count(prompt)
    if args.json:
        print(json.dumps(description))
    else:
        print(format_description(description))
        print(f"--- rendered prompt ({template.family}, {description['prompt_tokens']} tokens) ---")
        print(prompt)
    return 0


# ---- bench / eval / train --------------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> int:
    from lsp_copilot.pipeline import embedded_model_dirs

    if args.what == "context":
        from lsp_copilot.benchmarks.context import run_context_bench

        run_context_bench(as_json=args.json)
        return 0
    target, draft = embedded_model_dirs()
    model = Path(args.model) if args.model else target
    draft_dir = Path(args.draft) if args.draft else (draft if not args.model else None)
    if args.what == "rerank":
        from lsp_copilot.benchmarks.rerank import run_rerank_bench

        run_rerank_bench(model, draft_dir, args.limit, args.candidates, as_json=args.json, threads=args.threads,
                         device=args.device)
        return 0
    from lsp_copilot.benchmarks.decode import run_decode_bench

    run_decode_bench(model, draft_dir, args.limit, as_json=args.json, threads=args.threads, device=args.device)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    if args.what == "compare":
        return run_compare(args)
    from lsp_copilot.pipeline import embedded_model_dirs

    target, draft = embedded_model_dirs()
    model = Path(args.model) if args.model else target
    draft_dir = Path(args.draft) if args.draft else (draft if not args.model else None)
    if args.what == "humaneval-infill":
        from lsp_copilot.evaluation.humaneval_infill import HumanEvalSettings, run_humaneval_infill

        run_humaneval_infill(model, draft_dir, args.limit, as_json=args.json,
                             settings=HumanEvalSettings(direct=args.direct, candidates=args.candidates,
                                                        details=args.details))
    else:
        from lsp_copilot.evaluation.crossfile import CrossFileSettings, run_crossfile

        packages = tuple(p.strip() for p in args.packages.split(",") if p.strip()) if args.packages else None
        settings = CrossFileSettings(direct=args.direct, cursor=args.cursor, candidates=args.candidates,
                                     details=args.details, source_root=args.source_root, packages=packages)
        try:
            run_crossfile(model, args.limit, as_json=args.json, settings=settings)
        except (FileNotFoundError, ValueError) as exc:
            print(f"lsp-copilot: error: {exc}", file=sys.stderr)
            return 2
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """`eval compare --before A --after B`: two runs' details paired task by task."""
    from lsp_copilot.evaluation.report import compare_details

    if args.before is None or args.after is None:
        print("lsp-copilot: error: eval compare needs --before FILE and --after FILE (written by eval --details)",
              file=sys.stderr)
        return 2
    try:
        result = compare_details(args.before, args.after, args.system, args.measure, args.after_system)
    except (OSError, ValueError) as exc:
        print(f"lsp-copilot: error: {exc}", file=sys.stderr)
        return 2
    names = result["system"] if result["after_system"] == result["system"] else \
        f"{result['system']} -> {result['after_system']}"
    print(f"{names}, {result['measure']}: {result['before']} -> {result['after']} of {result['tasks']} "
          f"tasks; {result['gained']} turned right, {result['lost']} wrong (McNemar exact p = {result['p_value']})")
    for what in ("turned_right", "turned_wrong"):
        if result[what]:
            print(f"{what.replace('_', ' ')}: {', '.join(result[what])}")
    if args.json:
        print(json.dumps(result))
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the embedded target and draft models on the stdlib sources")
    p.add_argument("--out", type=Path, default=Path("runs"), help="directory for runs/target and runs/draft")
    p.add_argument("--only", choices=["target", "draft", "both"], default="both")
    p.add_argument("--minutes", type=float, default=85.0, help="time budget of the target's run")
    p.add_argument("--draft-minutes", type=float, default=20.0, help="time budget of the draft's run")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: by time)")
    p.add_argument("--resume", action="store_true", help="continue from the weights already in --out (or --init)")
    p.add_argument("--init", type=Path, default=None, help="start from this model directory's weights")
    p.add_argument("--teacher", type=Path, default=None, help="distil the draft from this model (default: the target)")
    p.add_argument("--corpus", type=Path, default=None, help="source tree to train on (default: the stdlib)")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-minutes", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--call-lines", type=float, default=0.0, metavar="SHARE",
                   help="share of FIM examples with cross-file context whose middle calls a shown definition")
    p.add_argument("--rename-rate", type=float, default=0.0, metavar="SHARE",
                   help="share of files per epoch whose function-local names are renamed (augmentation)")
    p.add_argument("--callee-rename", type=float, default=0.0, metavar="SHARE",
                   help="share of examples with cross-file context whose called definitions get new names")
    p.add_argument("--cross-file-rate", type=float, default=0.35, metavar="SHARE",
                   help="share of training chunks that carry cross-file context")
    p.add_argument("--accelerated", nargs=argparse.REMAINDER, default=None, metavar="ARGS",
                   help="run the accelerator recipe that made the shipped weights instead (lsp_copilot/training/"
                        "accelerated.py; its own options follow, e.g. --out runs/accel --device cuda)")


def run_train(args: argparse.Namespace) -> int:
    if args.accelerated is not None:  # the recipe of the shipped weights (an accelerator; runs on the CPU too)
        from lsp_copilot.training.accelerated import parse_args, run

        print(json.dumps(run(parse_args(args.accelerated, prog="lsp-copilot train --accelerated")).get("target")))
        return 0
    from lsp_copilot.training.trainer import TrainConfig, train

    setup_logging("info")
    common = dict(max_steps=args.max_steps, seq_len=args.seq_len, batch_size=args.batch_size,
                  eval_minutes=args.eval_minutes, corpus_root=args.corpus, threads=args.threads,
                  call_lines=args.call_lines, rename_rate=args.rename_rate, callee_rename=args.callee_rename,
                  cross_file_rate=args.cross_file_rate)
    target_dir, draft_dir = args.out / "target", args.out / "draft"
    if args.only in ("target", "both"):
        init = args.init or (target_dir if args.resume and (target_dir / "config.json").exists() else None)
        train(TrainConfig(out_dir=target_dir, role="target", minutes=args.minutes, lr=args.lr, init_from=init,
                          **common))  # type: ignore[arg-type]
    if args.only in ("draft", "both"):
        teacher = args.teacher or target_dir
        init = draft_dir if args.resume and (draft_dir / "config.json").exists() else None
        if args.only == "draft" and args.init is not None:
            init = args.init
        train(TrainConfig(out_dir=draft_dir, role="draft", minutes=args.draft_minutes, lr=args.lr * 1.5,
                          init_from=init, teacher=teacher, tokenizer_from=teacher, **common))  # type: ignore[arg-type]
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsp-copilot", description="On-prem code completion language server.")
    parser.add_argument("--version", action="version", version=f"lsp-copilot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the language server (stdio, or TCP with --tcp)")
    p.add_argument("--tcp", metavar="[HOST:]PORT", help="listen on TCP instead of stdio (host defaults to 127.0.0.1)")
    p.add_argument("--stdio", action="store_true", help="stdio transport (the default; accepted for editors)")
    _add_model_options(p)
    p.set_defaults(func=run_serve)

    p = sub.add_parser("complete", help="complete at FILE:LINE:COL (1-based) and stream the suggestion to stdout")
    p.add_argument("location", metavar="FILE:LINE:COL")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with the suggestion, its stats and the candidates weighed (best first)")
    p.add_argument("--verbose", "-v", action="store_true", help="log to stderr")
    _add_model_options(p)
    p.set_defaults(func=run_complete)

    p = sub.add_parser("context", help="show what the model would see at FILE:LINE:COL (1-based)")
    p.add_argument("location", metavar="FILE:LINE:COL")
    p.add_argument("--json", action="store_true")
    _add_model_options(p)
    p.set_defaults(func=run_context)

    p = sub.add_parser("bench", help="benchmarks: decode speed, context latency, the cost of reranking")
    p.add_argument("what", choices=["decode", "context", "rerank"])
    p.add_argument("--json", action="store_true", help="the last line printed is one JSON object")
    p.add_argument("--model")
    p.add_argument("--draft")
    p.add_argument("--limit", type=int, default=None, help="number of prompts (decode, rerank)")
    p.add_argument("--candidates", type=int, default=8, help="candidates of the reranking mode (rerank)")
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], default="cpu", help="where the models run (decode)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for every mode (decode)")
    p.set_defaults(func=run_bench)

    p = sub.add_parser("eval", help="quality evaluations")
    p.add_argument("what", choices=["humaneval-infill", "crossfile", "compare"],
                   help="compare: two runs' --details paired task by task")
    p.add_argument("--json", action="store_true", help="the last line printed is one JSON object")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N tasks")
    p.add_argument("--model")
    p.add_argument("--draft")
    p.add_argument("--direct", action="store_true",
                   help="complete with a plain greedy loop in the embedded models' training layout (and, for "
                        "crossfile, their training-style retrieval) instead of the server's pipeline")
    p.add_argument("--candidates", type=int, default=None,
                   help="the server's completion.candidates for the models (1: the greedy answer alone; default: the "
                        "server's default)")
    p.add_argument("--cursor", choices=["line", "call"], default="line",
                   help="crossfile: the answer is the whole line (line) or the line from its cross-file callee's "
                        "name on, as CrossCodeEval splits (call)")
    p.add_argument("--source-root", type=Path, default=None, metavar="DIR",
                   help="crossfile: derive the tasks from the packages under DIR (your own code, or the third-party "
                        "packages of bench/crossfile_third_party.txt) instead of the held-out stdlib packages")
    p.add_argument("--packages", default=None, metavar="A,B",
                   help="crossfile: which packages (comma-separated; default: the held-out stdlib packages, or every "
                        "package directly under --source-root)")
    p.add_argument("--details", type=Path, default=None,
                   help="write every system's per-task rows (task, expected, completion, exact, passed) to this "
                        "JSON-lines file")
    p.add_argument("--before", type=Path, default=None, help="compare: the details of the first run")
    p.add_argument("--after", type=Path, default=None, help="compare: the details of the second run")
    p.add_argument("--system", default="target",
                   help="compare: whose rows (target, draft, a baseline's name, or 'with workspace index' ...)")
    p.add_argument("--after-system", default=None,
                   help="compare: whose rows in --after (default: --system), e.g. --system 'without workspace index' "
                        "--after-system 'with workspace index' on one crossfile run's details")
    p.add_argument("--measure", choices=["exact", "passed"], default="exact", help="compare: which outcome")
    p.set_defaults(func=run_eval)

    _add_train(sub)
    sub.choices["train"].set_defaults(func=run_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
