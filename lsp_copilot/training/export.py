"""Copy trained model directories into the package (`lsp_copilot/models/`), leaving optimizer state behind."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SHIPPED_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "train_state.json")


def export_model(run_dir: Path, dest: Path) -> None:
    """Replace `dest` with the shippable files of `run_dir` (a model directory written by the trainer)."""
    if not (run_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{run_dir} holds no trained model (model.safetensors)")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.iterdir():
        old.unlink()
    for name in SHIPPED_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, dest / name)


if __name__ == "__main__":  # python -m lsp_copilot.training.export runs lsp_copilot/models
    runs, models = Path(sys.argv[1]), Path(sys.argv[2])
    for role in ("target", "draft"):
        export_model(runs / role, models / role)
        print(f"exported {runs / role} -> {models / role}")
