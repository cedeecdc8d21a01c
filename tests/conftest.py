"""Shared fixtures: tiny random models built through the real save/`from_pretrained` path, the embedded models, one
torch thread for a module, and SPM prompts cut from stdlib sources."""

from __future__ import annotations

import os
import random
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DIR = REPO_ROOT / "lsp_copilot" / "models"


def _tiny_corpus() -> list[str]:
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = ("textwrap.py", "bisect.py", "heapq.py", "shlex.py")
    return [(stdlib / name).read_text(encoding="utf-8") for name in names]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(target_dir, draft_dir): random tiny Llamas sharing a 600-token FIM tokenizer, saved as safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lsp_copilot.training.tokenizer import save_tokenizer, train_tokenizer

    root = tmp_path_factory.mktemp("tiny_models")
    tok = train_tokenizer(_tiny_corpus(), vocab_size=600)
    dirs = []
    for name, hidden, layers in (("target", 64, 2), ("draft", 32, 1)):
        out = root / name
        save_tokenizer(tok, out, model_max_length=1024)
        config = LlamaConfig(
            vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=hidden * 2,
            num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=2048, tie_word_embeddings=True, eos_token_id=0, bos_token_id=0, pad_token_id=4,
        )
        torch.manual_seed(0 if name == "target" else 1)
        LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
        dirs.append(out)
    return dirs[0], dirs[1]


@pytest.fixture(scope="session")
def embedded_models() -> tuple[Path, Path]:
    """(target_dir, draft_dir) of the models shipped in the package."""
    target, draft = EMBEDDED_DIR / "target", EMBEDDED_DIR / "draft"
    assert (target / "config.json").exists(), "the embedded target model is missing from lsp_copilot/models/target"
    assert (draft / "config.json").exists(), "the embedded draft model is missing from lsp_copilot/models/draft"
    return target, draft


STDLIB = Path(sysconfig.get_paths()["stdlib"])


def fim_prompts(n: int, seed: int = 0) -> list[str]:
    """SPM infilling prompts cut from stdlib sources (not the tokenizer's training files)."""
    rng = random.Random(seed)
    texts = [(STDLIB / name).read_text() for name in ("string.py", "colorsys.py", "fnmatch.py", "json/encoder.py")]
    prompts = []
    for i in range(n):
        text = texts[i % len(texts)]
        cut = rng.randrange(200, len(text) - 300)
        prefix = text[max(0, cut - rng.randrange(100, 700)):cut]
        suffix = text[cut + 40:cut + 40 + rng.randrange(0, 200)]
        prompts.append(f"<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}")
    return prompts


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module's tests: on a shared 2-core machine a second OpenMP thread waits on a busy core
    at every op (engine tests: 5+ minutes with two threads, seconds with one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
