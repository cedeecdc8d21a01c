"""Loading: device and dtype choice, the tokenizer, a causal LM directory, and the draft's tokenizer check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lsp_copilot.engine.types import ModelLoadError


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; other names go to torch.device (bad ones raise ModelLoadError)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ModelLoadError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from exc


def resolve_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (fp16 where bf16 is unsupported), fp16 on MPS, fp32 on CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def check_model_dir(model_dir: Path) -> None:
    """Raise ModelLoadError unless `model_dir` looks like a Hugging Face model directory."""
    if not model_dir.exists():
        raise ModelLoadError(f"model directory {model_dir} does not exist")
    if not model_dir.is_dir() or not (model_dir / "config.json").is_file():
        raise ModelLoadError(f"{model_dir} is not a model directory (no config.json)")


def load_tokenizer(model_dir: Path) -> Any:
    """The directory's tokenizer (fast when available), loaded offline."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {model_dir}: {exc}") from exc


def load_causal_lm(model_dir: Path, device: torch.device, dtype: torch.dtype) -> Any:
    """The directory's causal LM in eval mode on `device`."""
    from transformers import AutoModelForCausalLM

    check_model_dir(model_dir)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load a causal language model from {model_dir}: {exc}") from exc
    return model.to(device).eval()


def check_same_tokenizer(target_tok: Any, draft_tok: Any, draft_dir: Path) -> None:
    """A draft is only usable when its token ids mean what the target's mean; raise ModelLoadError otherwise."""
    if target_tok.get_vocab() != draft_tok.get_vocab():
        raise ModelLoadError(
            f"the draft model in {draft_dir} does not share the target's tokenizer (vocabularies differ); "
            "use a draft trained with the same tokenizer or run without a draft"
        )
    if target_tok.eos_token_id != draft_tok.eos_token_id:
        raise ModelLoadError(f"the draft model in {draft_dir} has a different end-of-text token than the target")


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a prompt: special-token text (FIM sentinels) becomes its ids; BOS only if the tokenizer asks."""
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if getattr(tokenizer, "add_bos_token", False) and bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids]
    return ids
