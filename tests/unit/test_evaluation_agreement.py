"""Draft agreement on held-out FIM text, and the direct completer's cached decode against a plain greedy loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lsp_copilot.evaluation.agreement import AgreementSettings, measure_agreement, validation_rows
from lsp_copilot.evaluation.completers import CompletionQuery, DirectModelCompleter, DirectSettings

SMALL = AgreementSettings(rows=2, seq_len=64, batch_size=2)


def test_a_model_agrees_with_itself_everywhere(tiny_models: tuple[Path, Path]) -> None:
    target, _ = tiny_models
    assert measure_agreement(target, target, SMALL) == 1.0


def test_two_different_models_agree_on_a_share_strictly_between_0_and_1(tiny_models: tuple[Path, Path]) -> None:
    target, draft = tiny_models
    share = measure_agreement(target, draft, SMALL)
    assert 0.0 <= share < 1.0


def test_validation_rows_come_from_the_held_out_fim_text(tiny_models: tuple[Path, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models[0])
    rows = validation_rows(tokenizer, AgreementSettings(rows=8, seq_len=256))
    assert rows.shape == (8, 257)
    fim_ids = {tokenizer.convert_tokens_to_ids(t) for t in ("<fim_prefix>", "<fim_middle>", "<fim_suffix>")}
    assert fim_ids & set(rows.flatten().tolist())  # the FIM mixture, not only left-to-right text


def test_models_with_different_vocabularies_are_refused(tiny_models: tuple[Path, Path], tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models[1])
    tokenizer.add_tokens(["<an_extra_token>"])
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="different vocabularies"):
        measure_agreement(tiny_models[0], tmp_path, SMALL)


def test_the_cached_decode_equals_a_plain_greedy_loop(tiny_models: tuple[Path, Path]) -> None:
    completer = DirectModelCompleter(tiny_models[0], DirectSettings(max_new_tokens=12))
    query = CompletionQuery("def area(w, h):\n    \n\nprint(area(2, 3))\n", 20, "a.py")
    ids, _ = completer.encode_prompt(query)
    assert ids[0] == completer.eos_id  # packed training rows: every example follows an end of text
    produced: list[int] = []
    banned = [*completer.sentinels, completer.file_sep]
    with torch.inference_mode():
        for _ in range(12):  # no cache: the whole sequence every step
            logits = completer.model(input_ids=torch.tensor([ids + produced])).logits[0, -1]
            logits[banned] = float("-inf")  # FIM sentinels never appear in an answer
            nxt = int(logits.argmax())
            if nxt in completer.stop_ids or "\n" in completer.tokenizer.decode([*produced, nxt]):
                break
            produced.append(nxt)
    expected = completer.tokenizer.decode(produced).split("\n")[0]
    assert completer(query).text == expected
