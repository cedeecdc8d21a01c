"""Reranked answers (engine/rerank.py and the engine's branching): choice, scores, KV bookkeeping, lossless modes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lsp_copilot.engine import (
    CancelToken,
    Engine,
    EngineSettings,
    GenerationRequest,
    GenerationResult,
    RequestError,
    RerankRequest,
)
from lsp_copilot.engine.detok import StopTracker
from lsp_copilot.engine.loading import encode_prompt
from lsp_copilot.engine.rerank import (
    Branch,
    Candidate,
    Tail,
    best,
    finalists,
    first_tokens,
    prune_behind,
    split_head,
    tail_logprob,
    tail_tokens,
)
from tests.conftest import STDLIB, fim_prompts

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BEFORE = (STDLIB / "colorsys.py").read_text()[:1500] + "\n    h = "
AFTER = "\n    return h, l, s\n\ndef hls_to_rgb(h, l, s):\n"


@pytest.fixture(scope="module")
def engine(tiny_models: tuple[Path, Path]) -> Engine:
    target, draft = tiny_models
    return Engine.load(target, draft, device="cpu")


def generate(engine: Engine, req: GenerationRequest) -> tuple[str, GenerationResult]:
    text = "".join(engine.generate(req))
    return text, engine.last_result


def candidate(text: str, logprob: float, stop: str = "eos", after: float = 0.0) -> Candidate:
    result = GenerationResult(text, 1, stop, 1, 1.0, logprob=logprob)
    return Candidate(result, text.strip(), after)


def test_first_tokens_are_the_likeliest_allowed_ones() -> None:
    logprobs = torch.tensor([-1.0, float("-inf"), -0.5, -3.0])
    assert first_tokens(logprobs, 2) == [2, 0]
    assert first_tokens(logprobs, 10) == [2, 0, 3]  # never a token the rules exclude
    assert first_tokens(torch.full((3,), float("-inf")), 4) == []
    assert first_tokens(logprobs, 3, max_gap=0.5) == [2, 0]  # -3.0 is 2.5 nats below the best
    assert first_tokens(logprobs, 3, max_gap=0.0) == [2]


def test_finalists_keep_one_of_each_shown_text_and_prefer_finished_non_empty_ones() -> None:
    a, a2 = candidate("x = 1", -1.0), candidate("x = 1 ", -2.0)  # the same shown text
    empty, cut = candidate("", -0.1), candidate("y = (", -0.5, stop="time_limit")
    assert finalists([a, empty, a2, cut]) == [a]
    assert finalists([empty, cut]) == [cut]  # nothing finished: an unfinished answer beats none
    assert finalists([empty]) == [empty]
    assert finalists([]) == []


def test_branches_far_behind_a_finished_candidate_are_pruned(engine: Engine) -> None:
    def branch(logprob: float, stop: str | None = None) -> Branch:
        b = Branch(StopTracker(engine.tokenizer, engine.stop_ids, engine.eos_ids, [], None, 10), None,
                   GenerationResult("", 0, "max_tokens", 0, 0.0, logprob=logprob))
        b.stop = stop
        return b

    running = [branch(-3.0), branch(-8.5), branch(-20.0)]
    prune_behind([*running, branch(-9.0, stop="time_limit")])  # an unfinished candidate sets no floor
    assert [b.stop for b in running] == [None, None, None]
    prune_behind([*running, branch(-2.0, stop="eos")], nats=6.0)
    assert [b.stop for b in running] == [None, "pruned", "pruned"]
    assert running[1].done().stop_reason == "pruned"


def test_best_adds_the_weighted_after_score_and_breaks_ties_towards_the_likelier_branch() -> None:
    greedy = candidate("return b", -1.0, after=-20.0)
    other = candidate("else:", -3.0, after=-10.0)
    assert best([greedy, other], 0.0) is greedy
    assert best([greedy, other], 1.0) is other  # -13 against -21
    twin = candidate("return a", -1.0, after=-20.0)
    assert best([greedy, twin], 1.0) is greedy


def test_split_head_cuts_at_the_cursor_lines_start() -> None:
    assert split_head("a\nb\n    x = ") == ("a\nb\n", "    x = ")
    assert split_head("x = ") == ("", "x = ")


def test_tail_tokens_read_the_line_as_one_text_and_mark_where_after_starts(engine: Engine) -> None:
    tok = engine.tokenizer
    tail = tail_tokens(tok, "    h = ", "(maxc + minc)", "\n    return h\n")
    assert tok.decode(tail.ids) == "    h = (maxc + minc)\n    return h\n"
    assert tail.ids == tok("    h = (maxc + minc)\n    return h\n", add_special_tokens=False)["input_ids"]
    assert tok.decode(tail.ids[tail.scored_from:]).startswith("\n")  # after's text, its first token included
    assert tok.decode(tail.ids[:tail.scored_from]) == "    h = (maxc + minc)"
    empty = tail_tokens(tok, "", "x", "")
    assert empty.scored_from == len(empty.ids)  # nothing after the cursor: nothing to score


def test_tail_logprob_sums_the_scored_rows() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [1 / 3] * 3]))
    tail = Tail([0, 1, 2], 1)
    assert tail_logprob(logits, tail) == pytest.approx(math.log(0.8) + math.log(0.6))
    assert tail_logprob(logits, Tail([0, 1, 2], 3)) == 0.0


def test_after_logprobs_equal_one_plain_forward_over_the_whole_text(engine: Engine, tiny_models: tuple[Path, Path]
                                                                    ) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_models[0])).eval()
    answers = ["(maxc + minc) / 2.0", "0", "rc"]
    engine.clear_cache()
    got = engine.after_logprobs(BEFORE, answers, AFTER)
    again = engine.after_logprobs(BEFORE, answers, AFTER)  # the head's KV reused: same numbers
    head_text, line_head = split_head(BEFORE)
    head = engine.tokenizer(head_text, add_special_tokens=False)["input_ids"]
    for answer, score, score2 in zip(answers, got, again, strict=True):
        tail = tail_tokens(engine.tokenizer, line_head, answer, AFTER)
        ids = [engine.tokenizer.eos_token_id, *head, *tail.ids]
        with torch.inference_mode():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
        first = len(ids) - len(tail.ids) + tail.scored_from  # position of the first scored token
        ref = sum(float(logp[i - 1, ids[i]]) for i in range(first, len(ids)))
        assert score == pytest.approx(ref, abs=2e-3)
        assert score2 == pytest.approx(score, abs=1e-4)
    assert len(set(got)) == 3


def request(prompt: str, spec: str = "off", candidates: int = 4, weight: float = 1.0,
            after: str = AFTER, **kw: object) -> GenerationRequest:
    rerank = RerankRequest(candidates, BEFORE, after, weight, max_gap=math.inf, shown=str.strip)
    return GenerationRequest(prompt, max_new_tokens=12, speculation=spec, rerank=rerank,
                             stop_strings=["\n"], **kw)  # type: ignore[arg-type]


def test_the_hugging_face_runner_reranks_to_the_same_answers(engine: Engine, tiny_models: tuple[Path, Path]
                                                              ) -> None:
    hf = Engine.load(tiny_models[0], device="cpu", settings=EngineSettings(lean=False))
    for prompt in fim_prompts(4, seed=21):
        engine.clear_cache()
        assert generate(hf, request(prompt))[0] == generate(engine, request(prompt))[0]


def test_one_candidate_is_the_greedy_answer(engine: Engine) -> None:
    for prompt in fim_prompts(4, seed=5):
        engine.clear_cache()
        plain, _ = generate(engine, GenerationRequest(prompt, max_new_tokens=12, stop_strings=["\n"]))
        one, res = generate(engine, request(prompt, candidates=1))
        assert one == plain
        assert res.candidates == 0  # no branching happened


def test_reranked_answers_are_the_same_in_every_speculation_mode_and_follow_the_weight(engine: Engine) -> None:
    changed = 0
    for prompt in fim_prompts(8, seed=7):
        engine.clear_cache()
        greedy, _ = generate(engine, GenerationRequest(prompt, max_new_tokens=12, stop_strings=["\n"]))
        by_mode = {}
        for spec in ("off", "lookup", "draft", "auto"):
            engine.clear_cache()
            text, res = generate(engine, request(prompt, spec))
            by_mode[spec] = (text, res.stop_reason, res.tokens, round(res.logprob, 3))
            assert res.candidates == 4
        assert len(set(by_mode.values())) == 1, by_mode  # lossless: branches, scores and choice identical
        # weight 0: the likeliest whole answer, which is never less likely than the greedy one
        engine.clear_cache()
        _, res0 = generate(engine, request(prompt, weight=0.0))
        engine.clear_cache()
        generate(engine, request(prompt, candidates=1))
        assert res0.logprob >= engine.last_result.logprob - 1e-4 or engine.last_result.logprob == 0.0
        changed += by_mode["off"][0] != greedy
    assert changed > 0, "reranking never changed an answer: the test tested nothing"


def test_the_tracked_logprob_is_the_answers_likelihood(engine: Engine) -> None:
    checked = 0
    for prompt in fim_prompts(8, seed=9):
        engine.clear_cache()
        text, res = generate(engine, request(prompt, weight=0.0))
        ids = encode_prompt(engine.tokenizer, text)
        if not text or engine.tokenizer.decode(ids) != text or res.stop_reason != "max_tokens":
            continue  # the answer must re-tokenize to the emitted tokens for this check
        ref = sum(engine.continuation_logprobs(prompt, text))
        if len(ids) != res.tokens:
            continue
        assert res.logprob == pytest.approx(ref, abs=1e-3)
        checked += 1
    assert checked > 0


def test_the_fim_prompt_stays_cached_across_reranking(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=11)[0]
    engine.clear_cache()
    first, _ = generate(engine, request(prompt))
    second, res = generate(engine, request(prompt))
    assert second == first
    assert res.reused_tokens == res.prompt_tokens - 1  # restored from the prefix cache after the scoring pass


def test_cancel_and_bad_rerank_fields(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=13)[0]
    cancel = CancelToken()
    cancel.cancel()
    assert list(engine.generate(request(prompt), cancel)) == []
    assert engine.last_result.stop_reason == "cancelled"
    with pytest.raises(RequestError, match="candidates"):
        list(engine.generate(request(prompt, candidates=0)))
    with pytest.raises(RequestError, match="weight"):
        list(engine.generate(request(prompt, weight=-1.0)))
    bad_gap = RerankRequest(4, BEFORE, AFTER, max_gap=-1.0)
    with pytest.raises(RequestError, match="max_gap"):
        list(engine.generate(GenerationRequest(prompt, rerank=bad_gap)))


def test_cancel_during_branching_answers_nothing(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=15)[0]
    cancel = CancelToken()
    calls: list[str] = []

    def stop_check(text: str) -> None:  # runs on every emitted token: the user types on after a few
        calls.append(text)
        if len(calls) == 12:
            cancel.cancel()

    req = GenerationRequest(prompt, max_new_tokens=40, stop_check=stop_check,
                            rerank=RerankRequest(8, BEFORE, AFTER, 1.0, max_gap=math.inf))
    assert list(engine.generate(req, cancel)) == []
    res = engine.last_result
    assert res.stop_reason == "cancelled"
    assert res.forwards <= 3  # stopped within a step of the cancellation (8 branches emit 8 tokens a step)


def test_branches_give_the_logits_of_plain_forwards(tiny_models: tuple[Path, Path]) -> None:
    """Lean and Hugging Face runners: K continuations in one pass equal each continuation run on its own."""
    prompt = encode_prompt(Engine.load(tiny_models[0], device="cpu").tokenizer, fim_prompts(1, seed=19)[0])
    rows = [[5, 9, 11], [7, 7, 3], [100, 2, 40]]
    for lean in (True, False):
        eng = Engine.load(tiny_models[0], device="cpu", settings=EngineSettings(lean=lean))
        with torch.inference_mode():
            eng.target.truncate(0)
            eng.target.forward(prompt)
            batch = eng.target.branches(len(rows), 8)
            first = batch.forward([r[:1] for r in rows])  # one token each, then two more
            rest = batch.forward([r[1:] for r in rows])
            batch.keep([0, 2])
            more = batch.forward([[1], [2]])
            got = torch.cat([first, rest], dim=1)  # [K, 3, V]
            assert eng.target.tokens == prompt  # the runner's own cache is untouched
            for k, row in enumerate(rows):
                eng.target.truncate(len(prompt))
                ref = eng.target.forward(row + ([1] if k == 0 else [2] if k == 2 else []))
                torch.testing.assert_close(got[k], ref[:3], rtol=1e-4, atol=1e-4)
                if k != 1:
                    torch.testing.assert_close(more[[0, 2].index(k), 0], ref[3], rtol=1e-4, atol=1e-4)


def test_a_time_limit_keeps_the_greedy_answer_at_least(engine: Engine) -> None:
    prompt = fim_prompts(1, seed=17)[0]
    engine.clear_cache()
    greedy, _ = generate(engine, GenerationRequest(prompt, max_new_tokens=12, stop_strings=["\n"]))
    engine.clear_cache()
    text, res = generate(engine, request(prompt, candidates=32, time_limit_s=1e-6))
    assert res.stop_reason == "time_limit"
    assert text and greedy.startswith(text)  # the greedy branch as far as it got
