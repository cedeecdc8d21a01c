"""The training loop of the embedded models: time-budgeted, resumable, with validation and optional distillation."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from lsp_copilot.training.augment import CalleeRenaming, Renaming
from lsp_copilot.training.corpus import SourceFile, iter_stdlib_files, split_corpus
from lsp_copilot.training.data import CrossFileIndex, build_examples, iterate_batches, pack_rows, tokenize_examples
from lsp_copilot.training.fim import FimRates
from lsp_copilot.training.tokenizer import save_tokenizer, train_tokenizer

# Shapes of the two embedded models (the shipped ones; both trainers build these). Deep and thin, MobileLLM's lesson
# for small models; head_dim 64 for the attention kernels. The draft is ~7x smaller and shares the tokenizer.
MODEL_SHAPES: dict[str, dict[str, Any]] = {
    "target": {"hidden_size": 384, "num_hidden_layers": 10, "num_attention_heads": 6,
               "num_key_value_heads": 2, "intermediate_size": 1152},
    "draft": {"hidden_size": 192, "num_hidden_layers": 3, "num_attention_heads": 3,
              "num_key_value_heads": 1, "intermediate_size": 576},
}
MAX_POSITIONS = 2048


@dataclass
class TrainConfig:
    """Everything one training run needs; defaults reproduce the shipped models."""

    out_dir: Path
    role: str = "target"  # "target" or "draft"
    minutes: float = 100.0  # wall-clock budget of this run
    max_steps: int = 0  # 0 = until the time budget is spent
    seq_len: int = 512
    batch_size: int = 8
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.03
    decay_frac: float = 0.25  # warm-up, constant, then linear decay over the last part (resumable "WSD")
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_minutes: float = 10.0  # validation and checkpoint interval
    eval_rows: int = 48
    init_from: Path | None = None  # start from these weights (resume); the tokenizer is taken from there too
    teacher: Path | None = None  # distil from this model (the draft learns to agree with the target)
    distill_weight: float = 0.7  # share of the KL term against the teacher; the rest is plain cross-entropy
    tokenizer_from: Path | None = None
    corpus_root: Path | None = None  # default: the running Python's stdlib
    seed: int = 0
    threads: int = 0  # 0 = torch default
    call_lines: float = 0.0  # FimRates.call_lines: middles that call a definition shown in the cross-file context
    rename_rate: float = 0.0  # share of files per epoch whose function-local names are renamed (augment.py)
    callee_rename: float = 0.0  # share of context-carrying examples whose called definitions get new names
    cross_file_rate: float = 0.35  # share of chunks that get cross-file context


def build_model(role: str, vocab_size: int, eos_id: int, pad_id: int,
                shape: dict[str, Any] | None = None) -> LlamaForCausalLM:
    """A fresh Llama of the given role's shape (or of `shape`), tied embeddings, 2,048 positions."""
    config = LlamaConfig(
        vocab_size=vocab_size, max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id,
        rms_norm_eps=1e-5, **(shape or MODEL_SHAPES[role]),
    )
    torch.manual_seed(1234)
    return LlamaForCausalLM(config)


def lr_at(progress: float, cfg: TrainConfig) -> float:
    """Learning rate at `progress` in [0, 1] of the budget: linear warm-up, constant, linear decay."""
    if progress < cfg.warmup_frac:
        return cfg.lr * progress / cfg.warmup_frac
    decay_start = 1.0 - cfg.decay_frac
    if progress < decay_start:
        return cfg.lr
    frac = min(1.0, (progress - decay_start) / cfg.decay_frac)
    return cfg.lr * (1.0 - frac * (1.0 - cfg.min_lr_ratio))


def load_or_train_tokenizer(cfg: TrainConfig, train_files: list[SourceFile]):
    """Reuse the tokenizer of `init_from`/`tokenizer_from`/`teacher` if given, else train one; save it to out_dir."""
    source = cfg.tokenizer_from or cfg.init_from or cfg.teacher
    if source is None:
        save_tokenizer(train_tokenizer(f.text for f in train_files), cfg.out_dir, MAX_POSITIONS)
    else:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (Path(source) / name) != (cfg.out_dir / name):
                shutil.copy(Path(source) / name, cfg.out_dir / name)
    return AutoTokenizer.from_pretrained(cfg.out_dir)


def autocast(device: torch.device) -> Any:
    """bf16 autocast on the device the tensors live on (CPU or accelerator)."""
    return torch.autocast(device.type, dtype=torch.bfloat16)


def batch_loss(model: Any, batch: torch.Tensor, teacher: Any, w: float) -> torch.Tensor:
    """Next-token cross-entropy on batch [B, S+1]; with a teacher, mixed with per-token KL(teacher || model)."""
    inputs, labels = batch[:, :-1], batch[:, 1:]
    with autocast(batch.device):
        logits = model(input_ids=inputs, use_cache=False).logits  # [B, S, V]
    logits = logits.float().reshape(-1, logits.shape[-1])  # [B*S, V]
    ce = F.cross_entropy(logits, labels.reshape(-1))
    if teacher is None or w == 0:
        return ce
    with torch.no_grad(), autocast(batch.device):
        t_logits = teacher(input_ids=inputs, use_cache=False).logits
    t_logp = F.log_softmax(t_logits.float().reshape(-1, t_logits.shape[-1]), -1)
    kl = F.kl_div(F.log_softmax(logits, -1), t_logp, log_target=True, reduction="batchmean")
    return (1 - w) * ce + w * kl


@torch.no_grad()
def evaluate(model: Any, rows: torch.Tensor, teacher: Any = None) -> dict[str, float]:
    """Mean cross-entropy over `rows` [N, S+1] (moved to the model's device); with a teacher, the share of positions
    where both argmaxes agree."""
    device = next(model.parameters()).device
    model.eval()
    losses, agree, total = [], 0, 0
    for i in range(0, rows.shape[0], 8):
        batch = rows[i : i + 8].to(device)
        with autocast(device):
            logits = model(input_ids=batch[:, :-1], use_cache=False).logits.float()
            if teacher is not None:
                t_top = teacher(input_ids=batch[:, :-1], use_cache=False).logits.argmax(-1)
                agree += int((logits.argmax(-1) == t_top).sum())
                total += t_top.numel()
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1)).item())
    model.train()
    out = {"loss": round(sum(losses) / len(losses), 4)}
    if teacher is not None:
        out["agreement"] = round(agree / max(1, total), 4)
    return out


def save_checkpoint(model: PreTrainedModel, opt: torch.optim.Optimizer, state: dict, out_dir: Path) -> None:
    """Weights as safetensors (what ships), optimizer and counters beside them (for resuming)."""
    model.save_pretrained(out_dir, safe_serialization=True)
    torch.save(opt.state_dict(), out_dir / "optimizer.pt")
    (out_dir / "train_state.json").write_text(json.dumps(state, indent=2, default=str) + "\n")


def train(cfg: TrainConfig) -> dict:
    """Run one budgeted training session and leave a loadable model directory in `cfg.out_dir`."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    files = iter_stdlib_files(cfg.corpus_root)
    train_files, valid_files = split_corpus(files)
    if not valid_files:  # a tiny corpus (tests): validate on the training files
        valid_files = train_files
    tok = load_or_train_tokenizer(cfg, train_files)
    rates = FimRates(call_lines=cfg.call_lines)

    prev_state: dict[str, Any] = {}
    model: PreTrainedModel
    if cfg.init_from is not None:
        model = AutoModelForCausalLM.from_pretrained(cfg.init_from, dtype=torch.float32)
        state_file = Path(cfg.init_from) / "train_state.json"
        prev_state = json.loads(state_file.read_text()) if state_file.exists() else {}
    else:
        model = build_model(cfg.role, len(tok), tok.eos_token_id, tok.pad_token_id)
    teacher = None
    if cfg.teacher is not None:
        teacher = AutoModelForCausalLM.from_pretrained(cfg.teacher, dtype=torch.float32).eval()
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95), fused=False,
    )
    opt_file = Path(cfg.init_from or "") / "optimizer.pt"
    if cfg.init_from is not None and opt_file.exists():
        with contextlib.suppress(ValueError, RuntimeError, KeyError):  # another shape of run: a fresh optimizer
            opt.load_state_dict(torch.load(opt_file))

    index = CrossFileIndex(train_files)
    renaming = Renaming.for_corpus(train_files, cfg.rename_rate) if cfg.rename_rate else None
    callees = CalleeRenaming.for_corpus(train_files, cfg.callee_rename) if cfg.callee_rename else None
    valid_ids = tokenize_examples(tok, build_examples(valid_files, CrossFileIndex(valid_files), 10_000, rates))
    valid_rows = pack_rows(valid_ids, cfg.seq_len)[: cfg.eval_rows]
    l2r_ids = tokenize_examples(tok, build_examples(valid_files, index, 10_001, FimRates(fim=0.0)))
    valid_l2r_rows = pack_rows(l2r_ids, cfg.seq_len)[: cfg.eval_rows]

    tokens_before = int(prev_state.get("tokens_seen", 0))
    history: list[dict] = list(prev_state.get("history", []))
    state: dict[str, Any] = {"role": cfg.role, "params": n_params, "config": asdict(cfg), "tokens_seen": tokens_before,
             "history": history, "wall_seconds": float(prev_state.get("wall_seconds", 0.0))}
    budget = cfg.minutes * 60.0
    start = time.monotonic()
    last_eval = start
    step = 0
    epoch = int(prev_state.get("epochs_started", 0))
    bar = tqdm(total=int(budget), unit="s", desc=f"train {cfg.role}", file=sys.stderr, mininterval=5)
    done = False
    while not done:
        examples = build_examples(train_files, index, cfg.seed * 1000 + epoch, rates, cfg.cross_file_rate,
                                  renaming=renaming, callees=callees)
        rows = pack_rows(tokenize_examples(tok, examples), cfg.seq_len)
        epoch += 1
        state["epochs_started"] = epoch
        for batch in iterate_batches(rows, cfg.batch_size, cfg.seed * 1000 + epoch):
            elapsed = time.monotonic() - start
            if elapsed >= budget or (cfg.max_steps and step >= cfg.max_steps):
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(elapsed / budget, cfg)
            loss = batch_loss(model, batch, teacher, cfg.distill_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            state["tokens_seen"] += batch[:, 1:].numel()
            bar.n = int(min(elapsed, budget))
            bar.set_postfix(loss=f"{loss.item():.3f}", tok=f"{state['tokens_seen'] / 1e6:.2f}M", refresh=False)
            bar.update(0)
            if time.monotonic() - last_eval >= cfg.eval_minutes * 60:
                last_eval = time.monotonic()
                _record(model, opt, state, valid_rows, valid_l2r_rows, start, cfg, step)
    bar.close()
    _record(model, opt, state, valid_rows, valid_l2r_rows, start, cfg, step)
    return state


def _record(model, opt, state, valid_rows, valid_l2r_rows, start, cfg, step) -> None:
    """Validate, append to the history, print a line, and checkpoint."""
    entry = {
        "tokens": state["tokens_seen"], "step": step,
        "valid_loss": evaluate(model, valid_rows)["loss"],
        "valid_loss_l2r": evaluate(model, valid_l2r_rows)["loss"],
        "minutes": round((time.monotonic() - start) / 60, 2),
    }
    state["history"].append(entry)
    tqdm.write(json.dumps(entry), file=sys.stderr)
    state["wall_seconds_this_run"] = time.monotonic() - start
    save_checkpoint(model, opt, {**state, "wall_seconds": state["wall_seconds"] + (time.monotonic() - start)},
                    cfg.out_dir)


if __name__ == "__main__":  # pragma: no cover - a quick way to measure throughput
    cfg = TrainConfig(out_dir=Path(sys.argv[1]), role=sys.argv[2], minutes=float(sys.argv[3]),
                      max_steps=int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    print(json.dumps(train(cfg)["history"][-1]))
