"""Copy trained model directories into the package (`lsp_copilot/models/`), leaving optimizer state behind."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

SHIPPED_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "train_state.json")


def export_model(run_dir: Path, dest: Path) -> None:
    """Replace `dest` with the shippable files of `run_dir` (a model directory written by the trainer).

    Weights ship as fp16 (half the size; the engine loads fp32 on a CPU and bf16 on a GPU): a run that saved fp32
    (the CPU trainer checkpoints its training dtype) is converted here.
    """
    if not (run_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{run_dir} holds no trained model (model.safetensors)")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        old.unlink()
    for name in SHIPPED_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, dest / name)
    to_half(dest)


def to_half(model_dir: Path) -> None:
    """Rewrite the floating-point tensors of `model_dir/model.safetensors` as fp16, and say so in config.json."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = model_dir / "model.safetensors"
    tensors = load_file(weights)
    if all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point()):
        return
    save_file({k: t.half() if t.is_floating_point() else t for k, t in tensors.items()}, weights,
              metadata={"format": "pt"})
    config_file = model_dir / "config.json"
    config = json.loads(config_file.read_text())
    config["dtype"] = "float16"
    config.pop("torch_dtype", None)
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":  # python -m lsp_copilot.training.export runs lsp_copilot/models
    runs, models = Path(sys.argv[1]), Path(sys.argv[2])
    for role in ("target", "draft"):
        export_model(runs / role, models / role)
        print(f"exported {runs / role} -> {models / role}")
