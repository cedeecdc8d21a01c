"""Does reranking lose in the search or in the score? The scratch probe behind "Beam search for the candidates: tried,
not shipped" in docs/benchmarks.md, outside the server's engine (the target through `transformers`).

`candidates`: through the server's pipeline with `--k` candidates within `--gap` nats, every candidate's scores; the
expected line is scored the same way (log p(answer | FIM prompt) + 0.5 log p(next 4 lines | before + answer)), and a
task counts as a *search error* when the expected line is not among the candidates yet scores above the one chosen.

    python bench/rerank_search_probe.py candidates --k 16 --gap 6 --limit 217     # 17 search errors, 23 found
    python bench/rerank_search_probe.py candidates --k 8 --gap 3 --split even   # the server: 43 found, 46 errors

`beam`: a plain beam of `--width` over whole single-line answers (a token holding a newline ends a hypothesis, the
first token may not end the answer), on the even-numbered HumanEval tasks: how often the expected line is among the
finished hypotheses, and exact match when the likeliest under the score above is kept, for several weights.

    python bench/rerank_search_probe.py beam --width 8     # 64 of 503 found; weight 0.5: 38 exact (25 min)

`crossfile`: on the cross-file call-site tasks of a details file (`lsp-copilot eval crossfile --cursor call --details D`
first, with the same `--source-root`), with the workspace index: would the expected rest of the line score above
the answer the server chose, under the same score? (How much a wider search over names could gain there.)

    python bench/rerank_search_probe.py crossfile --details call.jsonl                          # 9 of 88 (held out)
    python bench/rerank_search_probe.py crossfile --details tp.jsonl --source-root /tmp/cf-src  # 4 of 150

Each prints one JSON line per task on --out, then a summary.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from lsp_copilot.engine.loading import encode_prompt
from lsp_copilot.engine.rerank import split_head, tail_tokens
from lsp_copilot.evaluation.humaneval_infill import load_tasks
from lsp_copilot.evaluation.models import EMBEDDED_DIR, threaded_completer

STOPS = set(range(6))  # the embedded tokenizer's special tokens (<|endoftext|> and the FIM sentinels)


def first(text: str) -> str:
    return text.split("\n")[0].strip()


@torch.inference_mode()
def answer_scores(model: Any, tok: Any, prompt_ids: list[int], answers: list[str]) -> list[float]:
    """log p(answer | prompt) for each answer, tokenized on its own, in one padded forward."""
    ids = [tok(a, add_special_tokens=False)["input_ids"] or [tok.eos_token_id] for a in answers]
    width = max(map(len, ids))
    rows = [prompt_ids + a + [tok.eos_token_id] * (width - len(a)) for a in ids]
    logp = torch.log_softmax(model(torch.tensor(rows)).logits.float()[:, len(prompt_ids) - 1 : -1], -1)
    return [float(logp[k, torch.arange(len(a)), torch.tensor(a)].sum()) for k, a in enumerate(ids)]


@torch.inference_mode()
def after_scores(model: Any, tok: Any, before: str, answers: list[str], after: str) -> list[float]:
    """log p(after | before + answer) for each answer, the document read left to right from <|endoftext|>."""
    head, line = split_head(before)
    head_ids = tok(head, add_special_tokens=False)["input_ids"] if head else []
    tails = [tail_tokens(tok, line, a, after) for a in answers]
    width = max(len(t.ids) for t in tails)
    rows = [[tok.eos_token_id, *head_ids, *t.ids, *[tok.eos_token_id] * (width - len(t.ids))] for t in tails]
    logits = model(torch.tensor(rows)).logits.float()
    start = len(head_ids)  # row position of the token before the tail
    out = []
    for k, t in enumerate(tails):
        n = len(t.ids)
        if t.scored_from >= n:
            out.append(0.0)
            continue
        logp = torch.log_softmax(logits[k, start + t.scored_from : start + n], -1)
        out.append(float(logp[torch.arange(n - t.scored_from), torch.tensor(t.ids[t.scored_from :])].sum()))
    return out


@torch.inference_mode()
def beam(model: Any, newline: torch.Tensor, prompt_ids: list[int], width: int, max_steps: int = 48
         ) -> list[tuple[list[int], float]]:
    """Finished hypotheses (ids, log p); the search ends when 2 x width finished or none is live (a hypothesis 8
    nats behind the best finished one is dropped)."""
    out = model(torch.tensor([prompt_ids]), use_cache=True)
    cache = out.past_key_values
    logp = torch.log_softmax(out.logits[0, -1].float(), -1)
    logp[list(STOPS)] = float("-inf")
    beams: list[tuple[list[int], float]] = [([], 0.0)]
    logp = logp[None]
    finished: list[tuple[list[int], float]] = []
    pos = len(prompt_ids)
    for _ in range(max_steps):
        top = torch.topk(logp, width, dim=-1)
        cand = sorted(((s + v, b, t) for b, (_, s) in enumerate(beams)
                       for v, t in zip(top.values[b].tolist(), top.indices[b].tolist(), strict=True)),
                      key=lambda c: -c[0])
        live, parents = [], []
        for s, b, t in cand:
            ids = [*beams[b][0], t]
            if t in STOPS or newline[t]:
                finished.append((ids, s))
            else:
                live.append((ids, s))
                parents.append(b)
            if len(live) == width:
                break
        best = max((f[1] for f in finished), default=-1e9)
        keep = [i for i, (_, s) in enumerate(live) if s > best - 8.0]
        live, parents = [live[i] for i in keep], [parents[i] for i in keep]
        if not live or len(finished) >= 2 * width:
            break
        cache.reorder_cache(torch.tensor(parents))
        beams = live
        step = model(torch.tensor([[b[0][-1]] for b in beams]), past_key_values=cache, use_cache=True,
                     position_ids=torch.full((len(beams), 1), pos))
        pos += 1
        cache = step.past_key_values
        logp = torch.log_softmax(step.logits[:, -1].float(), -1)
    return finished


def crossfile_probe(args: argparse.Namespace, completer: Any, model: Any, out: Any) -> dict[str, Any]:
    """Per call-site task not already exact: does the expected rest of the line outscore the server's answer?"""
    from pathlib import Path

    from lsp_copilot.evaluation.crossfile import CrossFileSettings, Workspace
    from lsp_copilot.evaluation.crossfile import load_tasks as load_crossfile

    root = Path(args.source_root) if args.source_root else None
    with open(args.details, encoding="utf-8") as lines:
        rows = {r["task"]: r for r in map(json.loads, lines) if r["system"] == "with workspace index"}
    every = load_crossfile(CrossFileSettings(source_root=root).chosen_packages(), root, "call")
    tasks = [t for t in every if t.task_id in rows]  # the tasks the details were written for
    engine, tok = completer.model.engine, completer.model.engine.tokenizer
    workspace = Workspace(sorted({t.path.split("/", 1)[0] for t in tasks}), root)
    exact = wins = 0
    try:
        for task in tasks:
            with workspace.holding(task) as ws:
                _, prepared = completer.prepare(task.query(ws))
            got = first(rows[task.task_id]["completion"])
            if rows[task.task_id]["exact"]:
                exact += 1
                continue
            answers = [got or " ", task.expected]
            lp = [sum(engine.continuation_logprobs(prepared.prompt, a)) for a in answers]
            after = "\n".join(prepared.ctx.suffix.split("\n")[:5])
            aft = after_scores(model, tok, prepared.ctx.prefix, answers, after)
            win = lp[1] + 0.5 * aft[1] > lp[0] + 0.5 * aft[0]
            wins += win
            out.write(json.dumps({"task": task.task_id, "expected": task.expected, "chosen": got, "lp": lp,
                                  "after": aft, "expected_wins": win}) + "\n")
    finally:
        workspace.close()
    return {"mode": "crossfile", "tasks": len(tasks), "already_exact": exact, "expected_would_win": wins}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["candidates", "beam", "crossfile"])
    parser.add_argument("--details", help="crossfile: the details of `eval crossfile --cursor call` on these tasks")
    parser.add_argument("--source-root", help="crossfile: as given to `eval crossfile` (default: held-out stdlib)")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--gap", type=float, default=6.0)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--split", choices=["all", "even"], default=None,
                        help="which HumanEval tasks (default: all for candidates, even for beam)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", default="search_probe.jsonl")
    args = parser.parse_args()
    threads = int(os.environ.get("THREADS", "1"))
    completer = threaded_completer(EMBEDDED_DIR / "target", EMBEDDED_DIR / "draft", threads)
    completer.settings.completion.candidates, completer.settings.completion.candidate_gap = args.k, args.gap
    tok = completer.model.engine.tokenizer
    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_DIR / "target", dtype=torch.float32).eval()
    if args.mode == "crossfile":
        with open(args.out, "w", encoding="utf-8") as out:
            print(json.dumps(crossfile_probe(args, completer, model, out)))
        return
    newline = torch.tensor(["\n" in tok.decode([i]) for i in range(len(tok))])
    split = args.split or ("all" if args.mode == "candidates" else "even")
    tasks = load_tasks()[0::2] if split == "even" else load_tasks()
    tasks = tasks[: args.limit] if args.limit else tasks
    found = errors = 0
    exact = dict.fromkeys((0.0, 0.25, 0.5, 0.75), 0)
    with open(args.out, "w", encoding="utf-8") as out:
        for task in tasks:
            pipeline, prepared = completer.prepare(task.query())
            ctx, expected = prepared.ctx, task.expected.strip()
            after = "\n".join(ctx.suffix.split("\n")[:5])
            prompt_ids = encode_prompt(tok, prepared.prompt)
            if args.mode == "candidates":
                run = pipeline.start(prepared)
                for _ in run.iterate():
                    pass
                answers = [r.text for r in run.suggestion().ranking or []]
                chosen = first(answers[0]) if answers else ""
                pool = answers + ([expected] if expected not in map(first, answers) else [])
                spm = answer_scores(model, tok, prompt_ids, pool) if pool else []
                aft = after_scores(model, tok, ctx.prefix, pool, after) if pool else []
                score = [a + 0.5 * b for a, b in zip(spm, aft, strict=True)]
                hit = expected in map(first, answers)
                found += hit
                errors += bool(answers) and not hit and score[-1] > max(score[: len(answers)])
                rec: dict[str, Any] = {"task": task.task_id, "expected": expected, "chosen": chosen,
                                       "answers": pool, "lp": spm, "after": aft}
            else:
                hyps: dict[str, float] = {}
                for ids, s in beam(model, newline, prompt_ids, args.width):
                    text = tok.decode([i for i in ids if i not in STOPS]).split("\n")[0]
                    if text.strip() and s > hyps.get(text, -1e9):
                        hyps[text] = s
                answers = sorted(hyps, key=lambda t: -hyps[t])[: 2 * args.width]
                aft = after_scores(model, tok, ctx.prefix, answers, after) if answers else []
                found += expected in map(first, answers)
                for w in exact:
                    if answers:
                        j = max(range(len(answers)), key=lambda j: hyps[answers[j]] + w * aft[j])
                        exact[w] += first(answers[j]) == expected
                rec = {"task": task.task_id, "expected": expected, "answers": answers,
                       "lp": [hyps[a] for a in answers], "after": aft}
            out.write(json.dumps(rec) + "\n")
    summary: dict[str, Any] = {"mode": args.mode, "tasks": len(tasks), "expected_found": found}
    if args.mode == "candidates":
        summary["search_errors"] = errors
    else:
        summary["exact_by_weight"] = exact
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
