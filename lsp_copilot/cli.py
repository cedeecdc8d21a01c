"""Command line entry point: serve, complete, context, bench, eval, train."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def _run_train(args: argparse.Namespace) -> int:
    from lsp_copilot.training.trainer import TrainConfig, train

    common = dict(max_steps=args.max_steps, seq_len=args.seq_len, batch_size=args.batch_size,
                  eval_minutes=args.eval_minutes, corpus_root=args.corpus, threads=args.threads)
    target_dir, draft_dir = args.out / "target", args.out / "draft"
    if args.only in ("target", "both"):
        init = args.init or (target_dir if args.resume and (target_dir / "config.json").exists() else None)
        train(TrainConfig(out_dir=target_dir, role="target", minutes=args.minutes, lr=args.lr, init_from=init,
                          **common))
    if args.only in ("draft", "both"):
        teacher = args.teacher or target_dir
        init = draft_dir if args.resume and (draft_dir / "config.json").exists() else None
        if args.only == "draft" and args.init is not None:
            init = args.init
        train(TrainConfig(out_dir=draft_dir, role="draft", minutes=args.draft_minutes, lr=args.lr * 1.5,
                          init_from=init, teacher=teacher, tokenizer_from=teacher, **common))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lsp-copilot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    args = parser.parse_args(argv)
    if args.command == "train":
        return _run_train(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
