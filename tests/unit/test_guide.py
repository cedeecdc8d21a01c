"""Name-guided decoding: which tokens may continue a name, and when the guide lets go."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from lsp_copilot.engine.guide import NameGuide, VocabIndex, identifier_head

EMBEDDED = Path(__file__).resolve().parents[2] / "lsp_copilot" / "models" / "target"


@pytest.fixture(scope="module")
def vocab() -> VocabIndex:
    return VocabIndex(AutoTokenizer.from_pretrained(EMBEDDED), never=[0])


def test_identifier_head() -> None:
    assert (identifier_head("quote_string("), identifier_head("("), identifier_head(" x"), identifier_head("ab")) == (
        "quote_string", "", "", "ab")
    assert (identifier_head("$el."), identifier_head("café(")) == ("$el", "café")  # JavaScript's `$`, Unicode names


def test_a_name_is_guided_in_its_own_spelling_then_let_go(vocab: VocabIndex) -> None:
    names = ["quote_string", "quote_header", "parse_value"]
    guide = NameGuide(vocab, "", names)
    first = guide.allowed()
    assert first is not None
    assert sorted({vocab.spell(n)[0] for n in names}) == first  # each name's first token, nothing else
    taken = []
    for token in vocab.spell("quote_header"):
        assert guide.active and token in (guide.allowed() or [])
        guide.push(token)
        taken.append(token)
    assert guide.written == "quote_header" and vocab.texts[taken[0]] != "q"
    ending = guide.allowed()  # complete: only what ends the identifier
    assert ending and set(ending) == set(vocab.enders) and "(" in [vocab.texts[i] for i in ending]
    assert not any(vocab.texts[i][:1].isalnum() or vocab.texts[i][:1] == "_" for i in ending)
    assert 0 not in ending  # the end of text (excluded when the index was built) never ends a name
    guide.push(vocab.texts.index("("))
    assert not guide.active and guide.allowed() is None


def test_the_guide_continues_what_is_typed_and_stops_where_no_name_fits(vocab: VocabIndex) -> None:
    names = ["quote_string", "quiet"]
    guide = NameGuide(vocab, "qu", names)
    assert guide.allowed() == sorted({vocab.spell("ote_string")[0], vocab.spell("iet")[0]})
    guide.push(vocab.spell("iet")[0])
    assert guide.written.startswith("qui")
    stuck = NameGuide(vocab, "zzz", names)
    assert stuck.allowed() is None and not stuck.active  # no name continues what is typed: no rule
    longer = NameGuide(vocab, "", ["Header", "HeaderParseError"])
    for token in vocab.spell("Header"):
        longer.push(token)
    then = longer.allowed()  # `Header` is complete and `HeaderParseError` goes on
    assert then and vocab.spell("ParseError")[0] in then and set(vocab.enders) <= set(then)


def test_the_files_uses_update_the_models_choice_among_names(vocab: VocabIndex) -> None:
    """(p_model + w * uses) / (1 + w * all uses) per group of names: one use is a hint a sure model overrides,
    many uses win, and the model's own preferences inside a group stay."""
    import torch

    names = ["quote_string", "parse_value"]
    quote, parse = vocab.spell("quote_string")[0], vocab.spell("parse_value")[0]

    def pick(uses: dict[str, int], weight: float, sure_of_parse: float) -> int:
        guide = NameGuide(vocab, "", names, uses, weight)
        ids = guide.allowed()
        assert ids == sorted([quote, parse])
        logits = torch.zeros(len(vocab.texts))
        logits[parse] = sure_of_parse
        out = guide.apply(logits, ids)
        assert torch.isinf(out[[i for i in range(len(vocab.texts)) if i not in ids]]).all()
        return int(torch.argmax(out))

    assert pick({}, 0.5, 3.0) == parse  # no uses: the model's choice
    assert pick({"quote_string": 1}, 0.5, 6.0) == parse  # one use against a sure model
    assert pick({"quote_string": 1}, 0.5, 1.0) == quote  # one use against an unsure one
    assert pick({"quote_string": 1, "parse_value": 1}, 0.5, 1.0) == parse  # even uses: the model decides
    assert pick({"quote_string": 40}, 0.5, 6.0) == quote  # forty uses
    assert pick({"quote_string": 40}, 0.0, 6.0) == parse  # weight 0: the model alone
    complete = NameGuide(vocab, "", ["quote"], {"quote": 5}, 0.5)
    for token in vocab.spell("quote"):
        complete.push(token)
    enders = complete.allowed() or []
    logits = torch.zeros(len(vocab.texts))
    logits[vocab.texts.index("(")] = 4.0
    assert vocab.texts[int(torch.argmax(complete.apply(logits, enders)))] == "("  # one group: the model's order
