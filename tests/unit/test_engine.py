"""Engine tests on tiny random Llamas: lean forward, lossless speculation, sampling rule, prefix cache, stops."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from pathlib import Path

import pytest
import torch

from lsp_copilot.engine import CancelToken, Engine, EngineSettings, GenerationRequest, ModelLoadError, RequestError
from lsp_copilot.engine.detok import StopTracker
from lsp_copilot.engine.engine import check_row_exactness
from lsp_copilot.engine.prefix_cache import PrefixCache
from lsp_copilot.engine.runners import HFRunner, KVSnapshot, LeanRunner
from lsp_copilot.engine.sampling import Sampler
from tests.conftest import fim_prompts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine(tiny_models: tuple[Path, Path]) -> Engine:
    target, draft = tiny_models
    return Engine.load(target, draft, device="cpu")


def run(engine: Engine, req: GenerationRequest) -> tuple[str, list[str]]:
    deltas = list(engine.generate(req))
    return "".join(deltas), deltas


def test_lean_logits_match_hf(tiny_models: tuple[Path, Path]) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_models[0])).eval()
    engine = Engine.load(tiny_models[0], device="cpu")
    assert isinstance(engine.target, LeanRunner)
    ids = torch.randint(0, model.config.vocab_size, (300,), generator=torch.Generator().manual_seed(3)).tolist()
    with torch.inference_mode():
        ref = model(torch.tensor([ids])).logits[0]
        engine.target.truncate(0)
        ours = engine.target.forward(ids)  # the prefill path (one GEMM per projection)
        engine.target.truncate(280)
        steps = torch.cat([engine.target.forward(ids[i:i + 5]) for i in range(280, 300, 5)])  # the row-exact path
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(steps, ref[280:], rtol=1e-4, atol=1e-4)


def test_row_exactness_holds_on_cpu(engine: Engine) -> None:
    assert isinstance(engine.target, LeanRunner)
    assert check_row_exactness(engine.target)
    assert engine.exact_speculation


ALL_WEIGHTS = ("wqkv", "wo", "wgu", "wdown", "lm_head")


@pytest.mark.parametrize("kernel_rows, gemm_weights, row_kernel_weights", [
    (1, (), ()), (3, (), ()), (3, ALL_WEIGHTS, ()), (3, (), ALL_WEIGHTS), (3, ("wo", "wdown"), ("wqkv", "lm_head")),
])
def test_every_kernel_class_choice_is_row_exact(tiny_models: tuple[Path, Path], kernel_rows: int,
                                                gemm_weights: tuple[str, ...],
                                                row_kernel_weights: tuple[str, ...]) -> None:
    # the 1-row fallback, all small-row GEMMs, all padded GEMMs, all in the numba row kernel, the three classes
    # mixed: verify rows get the bits of single steps
    if row_kernel_weights:
        pytest.importorskip("numba")
    settings = EngineSettings(kernel_rows=kernel_rows, gemm_weights=gemm_weights,
                              row_kernel_weights=row_kernel_weights)
    engine = Engine.load(tiny_models[0], device="cpu", settings=settings)
    assert isinstance(engine.target, LeanRunner)
    assert engine.target.model.kernel_rows == kernel_rows  # no fallback was needed
    assert (engine.target.model.row_kernel is not None) == bool(row_kernel_weights)
    assert check_row_exactness(engine.target, length=140, width=13)


def test_one_big_gemm_verify_would_not_be_row_exact(tiny_models: tuple[Path, Path]) -> None:
    # why the kernel classes exist: a 13-row GEMM does not give a row the bits of a 1-row call on MKL builds
    if not torch.backends.mkl.is_available():
        pytest.skip("the kernel classes are measured on MKL CPU builds")
    engine = Engine.load(tiny_models[0], device="cpu")
    assert isinstance(engine.target, LeanRunner)
    w = engine.target.model.lm_head_t
    x = torch.randn(13, w.shape[0], generator=torch.Generator().manual_seed(1))
    single = torch.cat([torch.mm(x[i:i + 1], w) for i in range(13)])
    assert torch.equal(single[:3], torch.mm(x[:3], w))  # the small-row class
    assert torch.equal(torch.mm(x[:4], w), torch.mm(x, w)[:4])  # the GEMM class
    assert not torch.equal(single, torch.mm(x, w))  # mixing them is not exact


@pytest.mark.parametrize("spec", ["lookup", "draft", "screen", "draft+lookup", "lookup+screen", "auto"])
def test_greedy_speculation_is_token_for_token_the_plain_loop(engine: Engine, spec: str) -> None:
    drafted = 0
    for i, prompt in enumerate(fim_prompts(16, seed=1)):
        engine.clear_cache()
        plain, _ = run(engine, GenerationRequest(prompt, max_new_tokens=40, speculation="off"))
        base = engine.last_result
        # the on-screen text agrees with the answer for a while, then diverges (a stale suggestion)
        screen = plain[: len(plain) // 2] + "xq" + plain[: len(plain) // 3] if i % 2 else plain
        engine.clear_cache()
        req = GenerationRequest(prompt, max_new_tokens=40, speculation=spec, expected_continuation=screen)
        fast, _ = run(engine, req)
        res = engine.last_result
        assert fast == plain, (spec, i)
        assert (res.tokens, res.stop_reason) == (base.tokens, base.stop_reason)
        drafted += sum(res.drafted.values())
    assert drafted > 0, "the source never proposed anything: the comparison tested nothing"


@pytest.mark.parametrize("spec", ["draft", "lookup", "auto"])
def test_banned_tokens_are_never_chosen_and_speculation_stays_lossless(engine: Engine, spec: str) -> None:
    changed = 0
    for prompt in fim_prompts(8, seed=3):
        engine.clear_cache()
        free, _ = run(engine, GenerationRequest(prompt, max_new_tokens=24, speculation="off"))
        ids = engine.tokenizer(free, add_special_tokens=False)["input_ids"]
        if not ids:
            continue
        # ban the tokens the free answer used most: the answer must change (Sampler tests check they are never picked)
        common = [i for i, _ in Counter(ids).most_common(3) if i not in engine.eos_ids]
        banned = engine.tokenizer.convert_ids_to_tokens(common)
        plain, _ = run(engine, GenerationRequest(prompt, max_new_tokens=24, speculation="off", banned_tokens=banned))
        engine.clear_cache()
        fast, _ = run(engine, GenerationRequest(prompt, max_new_tokens=24, speculation=spec, banned_tokens=banned))
        assert fast == plain  # the mask applies to plain picks, verification and drafts alike
        changed += plain != free
    assert changed > 0, "banning never changed an answer: the test tested nothing"


def test_a_request_that_disallows_empty_answers_never_ends_at_its_first_token(tiny_models: tuple[Path, Path]) -> None:
    """allow_empty=False: where the model's first choice is an end token, the answer is its best non-empty one, the
    same in every speculation mode (the ban touches only the first pick, made before any speculation)."""
    target, draft = tiny_models
    engine = Engine.load(target, draft, device="cpu")
    prompt = fim_prompts(1, seed=11)[0]
    first_answer, _ = run(engine, GenerationRequest(prompt, max_new_tokens=12, speculation="off"))
    first = engine.tokenizer(first_answer, add_special_tokens=False)["input_ids"][0]
    engine.eos_ids = engine.eos_ids | {first}  # make the model's first choice an end token
    engine.stop_ids = engine.stop_ids | {first}
    empty, _ = run(engine, GenerationRequest(prompt, max_new_tokens=12, speculation="off"))
    assert empty == "" and engine.last_result.stop_reason == "eos"
    answers = {spec: run(engine, GenerationRequest(prompt, max_new_tokens=12, speculation=spec, allow_empty=False))[0]
               for spec in ("off", "lookup", "draft", "auto")}
    assert answers["off"] != "" and len(set(answers.values())) == 1, answers
    assert engine.tokenizer(answers["off"], add_special_tokens=False)["input_ids"][0] != first


def test_a_name_guide_finishes_a_known_name_the_same_in_every_mode(tiny_models: tuple[Path, Path]) -> None:
    """guide_names (the pipeline's rule after `module.`): the answer starts with one of the names, completed, then
    the model goes on freely; every speculation mode gives the same output."""
    target, draft = tiny_models
    engine = Engine.load(target, draft, device="cpu")
    names = ["quote_string", "quote_header", "parse_value"]
    prompt = fim_prompts(1, seed=5)[0]
    free, _ = run(engine, GenerationRequest(prompt, max_new_tokens=10, speculation="off"))
    answers = {spec: run(engine, GenerationRequest(prompt, max_new_tokens=10, speculation=spec,
                                                   guide_names=names))[0]
               for spec in ("off", "lookup", "draft", "auto")}
    assert len(set(answers.values())) == 1, answers
    answer = answers["off"]
    assert answer != free and any(answer.startswith(n) and not (answer[len(n):][:1].isalnum() or
                                                                answer[len(n):][:1] == "_") for n in names), answer
    typed, _ = run(engine, GenerationRequest(prompt, max_new_tokens=10, speculation="off", guide_names=names,
                                             guide_typed="parse_"))
    assert typed.startswith("value"), typed  # what is typed already is not repeated
    other = next(n for n in names if not answer.startswith(n))  # a name the model did not choose
    used = {spec: run(engine, GenerationRequest(prompt, max_new_tokens=10, speculation=spec, guide_names=names,
                                                guide_uses={other: 2}, guide_usage_weight=0.5))[0]
            for spec in ("off", "lookup", "draft", "auto")}
    assert len(set(used.values())) == 1, used  # the file's uses of it: (p + 0.5 * 2) / 2 >= 1/2 for its tokens
    assert used["off"].startswith(other) and not used["off"][len(other):][:1].isalnum(), (other, used)


def test_sampler_pick_can_keep_only_some_tokens_for_one_choice() -> None:
    sampler = Sampler(0.0, 1.0, 0, torch.device("cpu"), banned=[2])
    logits = torch.tensor([0.0, 1.0, 9.0, 2.0, 8.0])
    assert sampler.pick(logits, only=[0, 1, 2]) == 1 and sampler.pick(logits, [1], only=[0, 1]) == 0
    assert sampler.pick(logits) == 4 and float(logits[4]) == 8.0


def test_sampler_pick_can_ban_more_for_one_choice() -> None:
    sampler = Sampler(0.0, 1.0, 0, torch.device("cpu"), banned=[2])
    logits = torch.tensor([0.0, 1.0, 9.0, 2.0, 8.0])
    assert sampler.pick(logits, also_banned=[4]) == 3 and sampler.pick(logits) == 4  # the extra ban does not stay
    assert float(logits[4]) == 8.0  # the caller's logits are left as they are


def test_sampler_restrict_masks_only_the_banned_ids() -> None:
    sampler = Sampler(0.0, 1.0, 0, torch.device("cpu"), banned=[2, 4])
    logits = torch.tensor([[0.0, 1.0, 9.0, 2.0, 8.0], [5.0, 1.0, 9.0, 2.0, 0.0]])
    assert sampler.pick(logits[0]) == 3 and sampler.verify([3], None, logits).next_token == 0
    assert torch.equal(sampler.restrict(logits)[:, [0, 1, 3]], logits[:, [0, 1, 3]])
    hot = Sampler(1.0, 1.0, 0, torch.device("cpu"), banned=[2, 4])
    assert float(hot.probs(logits)[:, [2, 4]].sum()) == 0.0


def test_screen_draft_accepts_several_tokens_per_forward(engine: Engine) -> None:
    # a prompt whose answer re-tokenizes to the generated ids (the screen draft works on text)
    for prompt in fim_prompts(8, seed=5):
        plain, _ = run(engine, GenerationRequest(prompt, max_new_tokens=32, speculation="off"))
        if engine.count_tokens(plain) == engine.last_result.tokens and engine.last_result.tokens >= 10:
            break
    else:
        pytest.skip("no prompt with a canonically tokenized answer")
    req = GenerationRequest(prompt, max_new_tokens=32, speculation="screen", expected_continuation=plain)
    out, _ = run(engine, req)
    assert out == plain
    assert engine.last_result.accepted_per_forward > 3.0


def test_stop_check_and_stop_strings_cut_identically_with_speculation(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=7)[0]
    full, _ = run(engine, GenerationRequest(prompt, max_new_tokens=40, speculation="off"))
    assert len(full) > 12
    stop_at = full[8:11]
    for spec in ("off", "auto"):
        out, _ = run(engine, GenerationRequest(prompt, max_new_tokens=40, speculation=spec, stop_strings=[stop_at]))
        assert out == full[: full.index(stop_at)] and engine.last_result.stop_reason == "stop_string"
        out, _ = run(engine, GenerationRequest(prompt, max_new_tokens=40, speculation=spec,
                                               stop_check=lambda t: 7 if len(t) >= 7 else None))
        assert out == full[:7] and engine.last_result.text == out and engine.last_result.stop_reason == "stop_check"


def test_speculative_sampling_preserves_target_distribution() -> None:
    # vocabulary of 5; target p and a deliberately different draft q
    torch.manual_seed(0)
    p_logits = torch.tensor([2.0, 1.0, 0.5, -1.0, 0.0])
    q = torch.softmax(torch.tensor([0.0, 2.0, 0.0, 1.0, -1.0]), -1)
    sampler = Sampler(temperature=1.0, top_p=1.0, seed=123, device=torch.device("cpu"))
    p = sampler.probs(p_logits)
    n = 20_000
    counts: Counter[int] = Counter()
    point: Counter[int] = Counter()
    logits = torch.stack([p_logits, p_logits])  # [k+1, V] with k = 1
    for _ in range(n):
        x = sampler.draw(q)
        v = sampler.verify([x], q[None], logits)
        counts[x if v.accepted == 1 else v.next_token] += 1
        v = sampler.verify([1], None, logits)  # a deterministic (lookup-like) draft of token 1
        point[1 if v.accepted == 1 else v.next_token] += 1
    for c in (counts, point):
        freq = torch.tensor([c[i] / n for i in range(5)])
        expected = p * n
        chi2 = float((((freq * n) - expected) ** 2 / expected).sum())
        assert chi2 < 18.5, chi2  # chi-square, 4 degrees of freedom, p = 0.001
        assert 0.5 * float((freq - p).abs().sum()) < 0.015


def test_sampling_with_seed_is_reproducible_and_in_vocab(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=9)[0]
    a, _ = run(engine, GenerationRequest(prompt, max_new_tokens=20, temperature=0.8, top_p=0.9, seed=4))
    b, _ = run(engine, GenerationRequest(prompt, max_new_tokens=20, temperature=0.8, top_p=0.9, seed=4,
                                         speculation="off"))
    assert a and b


def test_prefix_cache_reuse_gives_the_same_logits(engine: Engine) -> None:
    doc_a, doc_b = fim_prompts(2, seed=11)
    engine.clear_cache()
    ids_a = engine.tokenizer(doc_a + "x", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        cold = engine.prefill(ids_a)
        engine.clear_cache()
        list(engine.generate(GenerationRequest(doc_a, max_new_tokens=4)))
        list(engine.generate(GenerationRequest(doc_b, max_new_tokens=4)))  # another document evicts the live cache
        reused = engine._reuse_prefix(ids_a)
        warm = engine.prefill(ids_a[reused:])
    assert reused >= len(ids_a) - 4  # restored from the stored copy of document A
    assert engine.prefix_cache.stats.restores >= 1
    torch.testing.assert_close(warm, cold, rtol=0, atol=1e-5)
    assert engine.cache_hit_rate() > 0


def test_one_character_edit_reuses_almost_all_of_the_prompt(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=13)[0]
    list(engine.generate(GenerationRequest(prompt, max_new_tokens=4)))
    list(engine.generate(GenerationRequest(prompt + "a", max_new_tokens=4)))
    res = engine.last_result
    assert res.reused_tokens >= res.prompt_tokens - 3
    assert res.cache_hit_rate > 0.9


def test_prefix_cache_evicts_least_recently_used_under_its_bound() -> None:
    def snap(tokens: tuple[int, ...]) -> KVSnapshot:
        return KVSnapshot(tokens, None, nbytes=100 * len(tokens))

    cache = PrefixCache(max_bytes=900)
    cache.put(snap((1, 2, 3)))
    cache.put(snap((4, 5, 6)))
    cache.put(snap((1, 2, 3, 9)))  # covers (1, 2, 3): that one is dropped
    assert [s.tokens for s in cache.entries.values()] == [(4, 5, 6), (1, 2, 3, 9)]
    assert cache.best_match([4, 5, 7])[1] == 2  # (4, 5, 6) is now the most recent
    cache.put(snap((7, 8, 9)))
    assert cache.bytes <= 900 and cache.stats.evictions == 1
    assert [s.tokens for s in cache.entries.values()] == [(4, 5, 6), (7, 8, 9)]
    cache.put(snap(tuple(range(20))))  # larger than the bound: not kept, nothing lost
    assert cache.bytes == 600


def test_engine_prefix_store_stays_within_bytes(tiny_models: tuple[Path, Path]) -> None:
    engine = Engine.load(tiny_models[0], device="cpu", settings=EngineSettings(prefix_cache_bytes=200_000))
    for prompt in fim_prompts(8, seed=17):
        list(engine.generate(GenerationRequest(prompt, max_new_tokens=2)))
    assert engine.prefix_cache.stats.snapshots >= 3
    assert engine.prefix_cache.bytes <= 200_000
    assert engine.prefix_cache.stats.evictions >= 1


def test_cancel_from_another_thread_stops_within_one_step(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=19)[0]
    cancel = CancelToken()
    at_cancel: list[int] = []
    seen = threading.Event()

    def canceller() -> None:
        seen.wait(10)
        at_cancel.append(engine.last_result.forwards)
        cancel.cancel()

    thread = threading.Thread(target=canceller)
    thread.start()
    got = []
    for delta in engine.generate(GenerationRequest(prompt, max_new_tokens=500, speculation="off"), cancel):
        got.append(delta)
        if len(got) == 3:
            seen.set()
            thread.join()
    res = engine.last_result
    assert res.stop_reason == "cancelled"
    assert res.forwards <= at_cancel[0] + 1
    assert res.text == "".join(got)


def test_time_limit_and_max_tokens(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=21)[0]
    list(engine.generate(GenerationRequest(prompt, max_new_tokens=3, stop_strings=["\x00"])))
    assert engine.last_result.tokens <= 3
    list(engine.generate(GenerationRequest(prompt, max_new_tokens=1000, time_limit_s=0.05, speculation="off")))
    assert engine.last_result.stop_reason in {"time_limit", "eos", "stop_string"}


def test_multibyte_characters_stream_whole(engine: Engine) -> None:
    text = "café € 😀 漢字 naïve"
    ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text) // 2  # bytes split across tokens: the case under test
    tracker = StopTracker(engine.tokenizer, set(), set(), ["漢字 n"], None, 1000)
    deltas = []
    for t in ids:
        delta, stop = tracker.push(t)
        assert "\ufffd" not in delta
        deltas.append(delta)
        if stop:
            break
    assert "".join(deltas) == "café € 😀 " and tracker.final == "café € 😀 "


def test_fim_sentinels_tokenize_to_special_ids(engine: Engine) -> None:
    ids = engine.tokenizer("<fim_prefix><fim_suffix>a<fim_middle>b", add_special_tokens=False)["input_ids"]
    fim_ids = engine.tokenizer.convert_tokens_to_ids(["<fim_prefix>", "<fim_suffix>", "<fim_middle>"])
    assert ids[:2] == fim_ids[:2] and fim_ids[2] in ids
    assert engine.count_tokens("<fim_prefix>") == 1


def test_bad_requests_raise_clear_errors_and_keep_the_cache(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=23)[0]
    list(engine.generate(GenerationRequest(prompt, max_new_tokens=2)))
    cached = list(engine.target.tokens)
    for bad in (GenerationRequest(prompt, temperature=-1), GenerationRequest(prompt, speculation="drafts"),
                GenerationRequest(prompt, top_p=0), GenerationRequest("x" * 20000)):
        with pytest.raises(RequestError):
            list(engine.generate(bad))
    assert engine.target.tokens == cached


def test_load_errors(tiny_models: tuple[Path, Path], tmp_path: Path) -> None:
    from lsp_copilot.training.tokenizer import save_tokenizer, train_tokenizer

    with pytest.raises(ModelLoadError, match="does not exist"):
        Engine.load(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="not a model directory"):
        Engine.load(tmp_path)
    other = tmp_path / "other_draft"
    shutil.copytree(tiny_models[1], other)
    save_tokenizer(train_tokenizer(["def f(x):\n    return x\n" * 50], vocab_size=300), other, model_max_length=1024)
    with pytest.raises(ModelLoadError, match="share the target's tokenizer"):
        Engine.load(tiny_models[0], other)


def test_generic_hf_runner_matches_the_lean_greedy_output(tiny_models: tuple[Path, Path]) -> None:
    lean = Engine.load(tiny_models[0], device="cpu")
    generic = Engine.load(tiny_models[0], device="cpu", settings=EngineSettings(lean=False))
    assert isinstance(generic.target, HFRunner)
    prompt = fim_prompts(1, seed=25)[0]
    a, _ = run(lean, GenerationRequest(prompt, max_new_tokens=16, speculation="off"))
    b, _ = run(generic, GenerationRequest(prompt, max_new_tokens=16, speculation="lookup"))
    c, _ = run(generic, GenerationRequest(prompt + "z", max_new_tokens=16, speculation="off"))
    assert a == b and c is not None


def test_cost_model_drafts_where_verify_rows_are_cheap_and_acceptance_high() -> None:
    from lsp_copilot.engine.costs import CostModel

    flat = CostModel(((1, 0.010), (2, 0.0101), (4, 0.0102), (8, 0.0105)), 0.0005)  # a GPU: extra rows ~free
    steep = CostModel(((1, 0.005), (2, 0.0077), (4, 0.0101), (8, 0.0154)), 0.0005)  # this CPU's row-exact path
    assert flat.best_draft_len(0.7, 12) >= 4 and flat.best_draft_len(0.95, 12) == 12
    assert steep.best_draft_len(0.5, 12) == 0 and 0 < steep.best_draft_len(0.9, 12) < 12
    assert steep.target(3) == pytest.approx((0.0077 + 0.0101) / 2) and steep.target(10) > steep.target(8)
    # a draft that must first run a 1,000-token prompt at 20 us a token (20 ms) pays only over a long completion
    lagging = CostModel(flat.target_s, 0.0005, draft_prefill_s=20e-6)
    assert lagging.catch_up(1000) == pytest.approx(0.02)
    assert lagging.best_draft_len(0.7, 12) >= 4  # no lag: as `flat`
    assert lagging.best_draft_len(0.7, 12, lag=1000, expected_tokens=2) == 0  # 20 ms of plain steps
    assert lagging.best_draft_len(0.7, 12, lag=1000, expected_tokens=2000) >= 4
    assert lagging.best_draft_len(0.7, 12, lag=1000) >= 4  # no expectation given: the catch-up is not weighed


@pytest.mark.parametrize("verify_row_cost, catch_up_cost, drafts", [(0.0, 0.0, True), (1.0, 0.0, False),
                                                                   (0.0, 1.0, False)])
def test_auto_runs_the_draft_model_only_where_the_cost_model_says_it_pays(
        tiny_models: tuple[Path, Path], verify_row_cost: float, catch_up_cost: float, drafts: bool) -> None:
    from lsp_copilot.engine.costs import CostModel

    target, draft = tiny_models
    engine = Engine.load(target, draft, device="cpu")
    assert engine.costs is not None and engine.costs.target(1) > 0 and engine.costs.draft_s > 0  # measured at load
    assert engine.costs.draft_prefill_s > 0
    engine.costs = CostModel(((1, 0.001), (2, 0.001 + verify_row_cost)), 0.0, catch_up_cost)
    outputs = {}
    for spec in ("off", "auto", "draft"):
        engine.stats.drafted.clear()
        engine.stats.accepted.clear()
        outputs[spec] = [run(engine, GenerationRequest(p, max_new_tokens=24, speculation=spec))[0]
                         for p in fim_prompts(4, seed=9)]
        if spec == "auto":
            drafted_by_model = engine.stats.drafted.get("draft", 0)
    assert outputs["auto"] == outputs["off"] == outputs["draft"]
    assert engine.stats.drafted.get("draft", 0) > 0  # an explicit "draft" always drafts
    if drafts:
        assert drafted_by_model > 0
    elif catch_up_cost:  # every prompt is new to the draft, and catching up costs 1 s a token: never worth it
        assert drafted_by_model == 0
    else:  # only the exploring steps (one in EXPLORE_EVERY skipped steps, one token each) draft
        assert drafted_by_model <= 4 * 24 // 16 + 1
