"""Draft agreement: how often the draft's greedy next token equals the target's, on held-out FIM text."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_copilot.training.corpus import iter_stdlib_files, split_corpus
from lsp_copilot.training.data import CrossFileIndex, build_examples, pack_rows, tokenize_examples
from lsp_copilot.training.fim import FimRates


@dataclass
class AgreementSettings:
    """How much validation text to score; the defaults take a few seconds per model on a laptop CPU."""

    rows: int = 16  # rows of `seq_len` tokens scored
    seq_len: int = 512
    batch_size: int = 4
    seed: int = 20_000  # the examples' cuts (distinct from the trainer's validation seeds)
    corpus_root: Path | None = None  # default: the running Python's stdlib (its held-out split is used)


def validation_rows(tokenizer: Any, settings: AgreementSettings) -> Any:
    """[rows, seq_len + 1] token ids of FIM examples (the training mixture) from the held-out files."""
    files = iter_stdlib_files(settings.corpus_root)
    _, valid = split_corpus(files)
    valid = valid or files  # a tiny corpus with no held-out file: score its training files
    random.Random(settings.seed).shuffle(valid)
    # Only as many files as the rows need (about 3 characters per token, twice over for safety).
    need, picked = settings.rows * (settings.seq_len + 1) * 6, []
    for f in valid:
        picked.append(f)
        need -= len(f.text)
        if need <= 0:
            break
    valid = picked
    ids = tokenize_examples(tokenizer, build_examples(valid, CrossFileIndex(valid), settings.seed, FimRates()))
    rows = pack_rows(ids, settings.seq_len)
    if len(rows) == 0:
        raise ValueError(f"the validation text has fewer than {settings.seq_len + 1} tokens")
    return rows[: settings.rows]


def greedy_tokens(model: Any, rows: Any, batch_size: int) -> Any:
    """argmax next-token ids [N, S] for inputs rows[:, :-1] ([N, S])."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            logits = model(input_ids=rows[i : i + batch_size, :-1]).logits  # [B, S, V]
            out.append(logits.argmax(dim=-1))
    return torch.cat(out)


def measure_agreement(target_dir: Path, draft_dir: Path, settings: AgreementSettings | None = None) -> float:
    """Share in [0, 1] of validation positions where argmax draft(x) == argmax target(x).

    Raises ValueError when the two models do not share a vocabulary (speculation would be impossible then).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = settings or AgreementSettings()
    tokenizer = AutoTokenizer.from_pretrained(target_dir)
    draft_tokenizer = AutoTokenizer.from_pretrained(draft_dir)
    if tokenizer.get_vocab() != draft_tokenizer.get_vocab():
        raise ValueError(f"{target_dir} and {draft_dir} have different vocabularies; a draft must share the target's")
    rows = validation_rows(tokenizer, settings)
    target = AutoModelForCausalLM.from_pretrained(target_dir).eval()
    target_next = greedy_tokens(target, rows, settings.batch_size)
    del target
    draft = AutoModelForCausalLM.from_pretrained(draft_dir).eval()
    draft_next = greedy_tokens(draft, rows, settings.batch_size)
    return float((target_next == draft_next).float().mean())
