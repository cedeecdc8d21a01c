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


def test_tokens_that_continue_a_name(vocab: VocabIndex) -> None:
    names = ["quote_string", "quote_header", "parse_value"]
    texts = [vocab.texts[i] for i in vocab.continuing("", names)]
    assert "qu" in texts or "quote" in texts
    for text in texts:  # a piece of a name, or a whole name and then something that is not an identifier
        head = identifier_head(text)
        assert any(n.startswith(head) for n in names) and (head == text or head in names), text
    assert not any(t.startswith(" ") for t in texts)  # no space after `module.`
    assert vocab.continuing("zz", names) == [] and 0 not in vocab.continuing("", ["<|endoftext|>"])
    done = [vocab.texts[i] for i in vocab.continuing("parse_value", names)]  # complete: only what ends it
    assert done and all(identifier_head(t) == "" for t in done) and "(" in done


def test_the_guide_follows_the_written_name_and_lets_go_after_it(vocab: VocabIndex) -> None:
    names = ["quote_string", "quiet"]
    guide = NameGuide(vocab, "qu", names)
    allowed = guide.allowed()
    assert allowed
    for i in allowed:  # every allowed token keeps "qu" + its identifier part on the way to a name
        head = identifier_head(vocab.texts[i])
        assert any(n.startswith("qu" + head) for n in names) and (head == vocab.texts[i] or "qu" + head in names)
    piece = next(i for i in allowed if identifier_head(vocab.texts[i]) == vocab.texts[i])
    guide.push(piece)
    assert guide.active and guide.written == "qu" + vocab.texts[piece]
    guide.push(vocab.texts.index("("))  # a token past the identifier: the rule is over
    assert not guide.active and guide.allowed() is None
    stuck = NameGuide(vocab, "zzz", names)
    assert stuck.allowed() is None and not stuck.active  # no name continues what is typed: no rule
