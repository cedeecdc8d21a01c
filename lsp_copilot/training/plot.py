"""Plot validation loss against tokens seen for the embedded models (needs the `train` extra: matplotlib)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot_losses(model_dirs: list[Path], out: Path) -> None:
    """One PNG with the validation-loss curves (FIM mix and left-to-right) of each model's train_state.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for model_dir in model_dirs:
        history = json.loads((model_dir / "train_state.json").read_text())["history"]
        tokens = [h["tokens"] / 1e6 for h in history]
        ax.plot(tokens, [h["valid_loss"] for h in history], marker="o", label=f"{model_dir.name}: FIM mix")
        ax.plot(tokens, [h["valid_loss_l2r"] for h in history], marker=".", ls="--",
                label=f"{model_dir.name}: left-to-right")
    ax.set_xlabel("training tokens seen (millions)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Embedded models: validation loss on held-out stdlib files")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":  # python -m lsp_copilot.training.plot lsp_copilot/models
    models = Path(sys.argv[1])
    plot_losses([models / "target", models / "draft"], models / "loss.png")
