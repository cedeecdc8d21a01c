"""Training both embedded models on an accelerator in one time-budgeted run, with epochs built by parallel workers.

The CPU trainer (`trainer.py`) feeds one core; an H200 eats a stdlib epoch in seconds. Here worker processes build
fresh FIM epochs (new cuts, new middles) ahead of the GPU, the target trains first, then the draft is distilled from
it, and each finished model is written as a loadable directory (fp16 safetensors, shippable) plus a tar split into
parts small enough to copy back from a lent machine. Exact command and results: `lsp_copilot/models/MODEL_CARD.md`.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lsp_copilot.training.augment import CalleeRenaming, Renaming
from lsp_copilot.training.corpus import SourceFile, iter_stdlib_files, split_corpus
from lsp_copilot.training.data import ChunkSizes, CrossFileIndex, build_examples, pack_rows, tokenize_examples
from lsp_copilot.training.fim import FimRates
from lsp_copilot.training.trainer import MODEL_SHAPES, batch_loss, build_model, evaluate

PART_BYTES = 15 * 1024 * 1024  # a lent machine returns files of at most 16 MiB


@dataclass
class PhaseConfig:
    """One model's share of the run."""

    role: str
    seconds: float
    lr: float
    shape: dict[str, Any] = field(default_factory=dict)
    distill_weight: float = 0.0  # share of KL(teacher || model) in the loss; 0 = plain cross-entropy
    init_from: Path | None = None  # continue from these weights (a model directory) instead of a fresh model


@dataclass
class RunConfig:
    """The whole accelerated run: data, batch geometry, both phases, where results go."""

    out_dir: Path
    tokenizer_dir: Path
    corpus_root: Path | None = None
    device: str = "cuda"
    seq_len: int = 2048
    batch_size: int = 16
    workers: int = 8
    shards: int = 16  # one epoch is built as this many independent pieces
    warmup_frac: float = 0.03
    decay_frac: float = 0.3
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_seconds: float = 30.0
    eval_rows: int = 48
    seed: int = 7
    chunks: ChunkSizes = field(default_factory=lambda: ChunkSizes(300, 1600, long_rate=0.35, long_max_chars=6000))
    fim: FimRates = field(default_factory=FimRates)  # the training mixture (validation keeps the default one)
    rename_rate: float = 0.0  # share of files per epoch whose function-local names are renamed (augment.py)
    callee_rename: float = 0.0  # share of context-carrying examples whose called definitions get new names
    cross_file_rate: float = 0.35  # share of chunks that get cross-file context
    phases: list[PhaseConfig] = field(default_factory=list)
    teacher: Path | None = None  # for a draft phase without a target phase before it
    parts_dir: Path | None = None  # also write each model as tar parts here (for a machine that returns files)


# ---- data: epochs built by worker processes ----------------------------------------------------------------------
_WORKER: dict[str, Any] = {}  # per worker process: what the pool's initializer handed over (inherited on fork)


def _init_worker(files: list[SourceFile], index: CrossFileIndex, tokenizer_dir: str, chunks: ChunkSizes,
                 rates: FimRates, renaming: Renaming | None, callees: CalleeRenaming | None,
                 cross_file_rate: float) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    torch.set_num_threads(1)
    _WORKER.update(files=files, index=index, chunks=chunks, rates=rates, renaming=renaming, callees=callees,
                   cross_file_rate=cross_file_rate,
                   tok=AutoTokenizer.from_pretrained(tokenizer_dir))


def _build_shard(task: tuple[int, int, int, int]) -> np.ndarray:
    """Token ids (uint16) of one shard of one epoch: files[shard::shards], cut and FIM-split by (seed, epoch)."""
    seed, epoch, shard, shards = task
    files = _WORKER["files"][shard::shards]
    if not files:  # a corpus with fewer files than shards
        return np.zeros(0, dtype=np.uint16)
    examples = build_examples(files, _WORKER["index"], seed * 1_000_003 + epoch * 1009 + shard, _WORKER["rates"],
                              _WORKER["cross_file_rate"], _WORKER["chunks"], _WORKER["renaming"], _WORKER["callees"])
    return np.asarray(tokenize_examples(_WORKER["tok"], examples), dtype=np.uint16)


class EpochFeed:
    """Epochs as shuffled row tensors [N, seq_len + 1], built `ahead` epochs in advance by a process pool."""

    def __init__(self, pool: Any, cfg: RunConfig, ahead: int = 2) -> None:
        self.pool, self.cfg, self.ahead = pool, cfg, ahead
        self.pending: dict[int, list[Any]] = {}
        self.next_epoch = 0
        for e in range(ahead):
            self._request(e)

    def _request(self, epoch: int) -> None:
        tasks = [(self.cfg.seed, epoch, s, self.cfg.shards) for s in range(self.cfg.shards)]
        self.pending[epoch] = [self.pool.apply_async(_build_shard, (t,)) for t in tasks]

    def next_rows(self) -> torch.Tensor:
        epoch = self.next_epoch
        self.next_epoch += 1
        self._request(epoch + self.ahead)
        ids = torch.from_numpy(np.concatenate([r.get() for r in self.pending.pop(epoch)]).astype(np.int64))
        n, s = (len(ids) - 1) // self.cfg.seq_len, self.cfg.seq_len
        rows = ids[: n * s + 1].unfold(0, s + 1, s)  # [n, s + 1], row k = ids[k*s : (k+1)*s + 1], as pack_rows
        g = torch.Generator().manual_seed(self.cfg.seed * 7919 + epoch)
        return rows[torch.randperm(rows.shape[0], generator=g)]


def validation_sets(files: list[SourceFile], tok: Any, cfg: RunConfig) -> dict[str, torch.Tensor]:
    """Fixed held-out rows: the training mixture (FIM) and plain left-to-right text."""
    index = CrossFileIndex(files)
    out = {}
    for name, rates, seed in (("fim", FimRates(), 10_000), ("l2r", FimRates(fim=0.0), 10_001)):
        ids = tokenize_examples(tok, build_examples(files, index, seed, rates, sizes=cfg.chunks))
        out[name] = pack_rows(ids, cfg.seq_len)[: cfg.eval_rows]
    return out


# ---- model and loss ----------------------------------------------------------------------------------------------
def lr_at(progress: float, peak: float, cfg: RunConfig) -> float:
    """Warm-up, constant, then a cosine decay to `min_lr_ratio` over the last `decay_frac` of the time budget."""
    if progress < cfg.warmup_frac:
        return peak * progress / cfg.warmup_frac
    start = 1.0 - cfg.decay_frac
    if progress < start:
        return peak
    frac = min(1.0, (progress - start) / cfg.decay_frac)
    return peak * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


# ---- one phase ---------------------------------------------------------------------------------------------------
def train_phase(phase: PhaseConfig, cfg: RunConfig, feed: EpochFeed, valid: dict[str, torch.Tensor], tok: Any,
                device: torch.device, teacher: Any = None) -> tuple[Any, dict[str, Any]]:
    """Train one model for `phase.seconds` of wall time; returns it with its history."""
    model: Any = build_model(phase.role, len(tok), tok.eos_token_id, tok.pad_token_id, phase.shape) \
        if phase.init_from is None else \
        AutoModelForCausalLM.from_pretrained(phase.init_from, dtype=torch.float32)
    model = model.to(device)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=phase.lr, betas=(0.9, 0.95), fused=device.type == "cuda")
    state: dict[str, Any] = {"role": phase.role, "params": params, "tokens_seen": 0, "steps": 0, "history": [],
                             "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type}
    log(f"{phase.role}: {params / 1e6:.2f} M parameters, {phase.seconds:.0f} s")
    start = last_eval = time.monotonic()
    done = False
    loss = torch.tensor(float("nan"))
    while not done:
        rows = feed.next_rows()
        for i in range(0, rows.shape[0] - cfg.batch_size + 1, cfg.batch_size):
            elapsed = time.monotonic() - start
            if elapsed >= phase.seconds:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(elapsed / phase.seconds, phase.lr, cfg)
            batch = rows[i : i + cfg.batch_size].to(device, non_blocking=True)
            loss = batch_loss(model, batch, teacher, phase.distill_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            state["steps"] += 1
            state["tokens_seen"] += batch.shape[0] * (batch.shape[1] - 1)
            if time.monotonic() - last_eval >= cfg.eval_seconds:
                last_eval = time.monotonic()
                record(model, state, valid, teacher, start, float(loss.item()))
    record(model, state, valid, teacher, start, float(loss.item()))
    restore_best(model, state)
    state["epochs"] = round(state["tokens_seen"] / max(1, rows.shape[0] * cfg.seq_len), 2)  # epochs differ little
    state["wall_seconds"] = round(time.monotonic() - start, 1)
    return model, state


def record(model: Any, state: dict[str, Any], valid: dict[str, torch.Tensor], teacher: Any, start: float,
           train_loss: float) -> None:
    """Validate on both held-out sets, append to the history and print a line."""
    fim = evaluate(model, valid["fim"], teacher)
    entry = {"tokens": state["tokens_seen"], "step": state["steps"], "seconds": round(time.monotonic() - start, 1),
             "train_loss": round(train_loss, 4), "valid_loss": fim["loss"],
             "valid_loss_l2r": evaluate(model, valid["l2r"])["loss"]}
    if "agreement" in fim:
        entry["agreement"] = fim["agreement"]
    state["history"].append(entry)
    if entry["valid_loss"] < state.get("best", {}).get("valid_loss", float("inf")):
        # Repeated epochs over a small corpus overfit: keep the weights of the best validation point (on the CPU).
        state["best"] = entry
        state["_best_weights"] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    log(json.dumps({"role": state["role"], **entry}))


def restore_best(model: Any, state: dict[str, Any]) -> None:
    """Load the weights of the best validation point into `model` (they stay if the last point is the best)."""
    best = state.pop("_best_weights", None)
    if best is not None:
        model.load_state_dict(best)
        log(f"{state['role']}: kept the weights of step {state['best']['step']} "
            f"(valid loss {state['best']['valid_loss']})")


# ---- output ------------------------------------------------------------------------------------------------------
def save_model(model: Any, state: dict[str, Any], cfg: RunConfig, name: str) -> Path:
    """fp16 safetensors + config + tokenizer + train_state.json in out_dir/name; tar parts in parts_dir."""
    dest = cfg.out_dir / name
    dest.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(dest, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (cfg.tokenizer_dir / f).is_file():
            shutil.copy(cfg.tokenizer_dir / f, dest / f)
    (dest / "train_state.json").write_text(json.dumps(state, indent=2, default=str) + "\n")
    if cfg.parts_dir is not None:
        write_parts(dest, cfg.parts_dir, name)
    return dest


def write_parts(model_dir: Path, parts_dir: Path, name: str) -> list[Path]:
    """`model_dir` as an uncompressed tar split into `name.tar.partNN` files of at most PART_BYTES."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(model_dir, arcname=name)
    data = buf.getvalue()
    parts_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(0, len(data), PART_BYTES):
        path = parts_dir / f"{name}.tar.part{k // PART_BYTES:02d}"
        path.write_bytes(data[k : k + PART_BYTES])
        out.append(path)
    return out


def join_parts(parts_dir: Path, name: str, dest: Path) -> Path:
    """Reassemble `name.tar.part*` from `parts_dir` and unpack it under `dest` (the inverse of `write_parts`)."""
    data = b"".join(p.read_bytes() for p in sorted(parts_dir.glob(f"{name}.tar.part*")))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+ / 3.11.4+
            tar.extractall(dest, filter="data")
        else:  # older: the same guarantee checked by hand (plain files and folders, inside `dest`)
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()) or Path(member.name).is_absolute() or \
                        ".." in Path(member.name).parts:
                    raise ValueError(f"{name}: refusing to unpack {member.name!r}")
            tar.extractall(dest)  # every member was checked above
    return dest / name


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- the run -----------------------------------------------------------------------------------------------------
def run(cfg: RunConfig) -> dict[str, Any]:
    """Build the data workers, train each phase in order (a draft phase distils from the target), save each model."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    t0 = time.monotonic()
    files = iter_stdlib_files(cfg.corpus_root)
    train_files, valid_files = split_corpus(files)
    valid_files = valid_files or train_files
    tok = AutoTokenizer.from_pretrained(cfg.tokenizer_dir)
    index = CrossFileIndex(train_files)
    log(f"corpus: {len(train_files)} training files, {len(valid_files)} held out; "
        f"index in {time.monotonic() - t0:.1f}s")
    renaming = None
    if cfg.rename_rate > 0:
        renaming = Renaming.for_corpus(train_files, cfg.rename_rate)
        log(f"renaming {cfg.rename_rate:.0%} of files per epoch from a pool of {len(renaming.pool)} local names")
    callees = CalleeRenaming.for_corpus(train_files, cfg.callee_rename) if cfg.callee_rename > 0 else None
    # The pool forks before any accelerator context exists.
    pool = mp.get_context("fork").Pool(cfg.workers, initializer=_init_worker,
                                       initargs=(train_files, index, str(cfg.tokenizer_dir), cfg.chunks, cfg.fim,
                                                 renaming, callees, cfg.cross_file_rate))
    feed = EpochFeed(pool, cfg)
    valid = validation_sets(valid_files, tok, cfg)
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    summary: dict[str, Any] = {"config": json.loads(json.dumps(asdict(cfg), default=str))}
    teacher = None
    if cfg.teacher is not None:
        teacher = AutoModelForCausalLM.from_pretrained(cfg.teacher, dtype=torch.float32).eval().to(device)
    try:
        for phase in cfg.phases:
            model, state = train_phase(phase, cfg, feed, valid, tok, device,
                                       teacher if phase.distill_weight > 0 else None)
            state["run"] = summary["config"]
            summary[phase.role] = {k: v for k, v in state.items() if k != "history"} | {
                "final": state["history"][-1]}
            if phase.role == "target":
                teacher = model.eval().to(torch.bfloat16 if device.type == "cuda" else torch.float32)
            save_model(_copy_for_saving(model), state, cfg, phase.role)
            log(f"saved {phase.role} after {time.monotonic() - t0:.0f}s")
    finally:
        pool.terminate()
    summary["total_seconds"] = round(time.monotonic() - t0, 1)
    (cfg.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _copy_for_saving(model: Any) -> Any:
    """A CPU fp32 copy, so that saving in fp16 leaves the live model (perhaps the teacher) as it is."""
    import copy

    return copy.deepcopy(model).to("cpu", torch.float32)


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> RunConfig:
    """The run's configuration from command-line arguments (`lsp-copilot train --accelerated ...` forwards here)."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--parts", type=Path, default=None, help="also write tar parts of each model here")
    p.add_argument("--tokenizer", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "target")
    p.add_argument("--corpus", type=Path, default=None, help="stdlib root to train on (default: the running one)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--target-seconds", type=float, default=270.0)
    p.add_argument("--draft-seconds", type=float, default=140.0)
    p.add_argument("--target-lr", type=float, default=2e-3)
    p.add_argument("--draft-lr", type=float, default=3e-3)
    p.add_argument("--distill-weight", type=float, default=0.8)
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--eval-seconds", type=float, default=30.0)
    p.add_argument("--eval-rows", type=int, default=48)
    p.add_argument("--rename-rate", type=float, default=0.0,
                   help="share of files per epoch whose function-local names are renamed (augmentation)")
    p.add_argument("--call-lines", type=float, default=0.0,
                   help="share of FIM examples with cross-file context whose middle calls a shown definition")
    p.add_argument("--callee-rename", type=float, default=0.0,
                   help="share of examples with cross-file context whose called definitions are renamed (augment.py)")
    p.add_argument("--cross-file-rate", type=float, default=0.35, help="share of chunks with cross-file context")
    p.add_argument("--shapes", type=str, default="", help="JSON {role: shape} overriding MODEL_SHAPES (tests)")
    p.add_argument("--init-target", type=Path, default=None, help="continue the target from these weights")
    p.add_argument("--init-draft", type=Path, default=None, help="continue the draft from these weights")
    p.add_argument("--only", choices=["target", "draft", "both"], default="both",
                   help="train one model; a draft alone distils from --teacher")
    p.add_argument("--teacher", type=Path, default=None, help="the target to distil from when --only draft")
    a = p.parse_args(argv)
    shapes = {**MODEL_SHAPES, **(json.loads(a.shapes) if a.shapes else {})}
    return RunConfig(
        out_dir=a.out, tokenizer_dir=a.tokenizer, corpus_root=a.corpus, device=a.device, seq_len=a.seq_len,
        batch_size=a.batch_size, workers=a.workers, eval_seconds=a.eval_seconds, eval_rows=a.eval_rows,
        parts_dir=a.parts, fim=FimRates(call_lines=a.call_lines), rename_rate=a.rename_rate,
        callee_rename=a.callee_rename, cross_file_rate=a.cross_file_rate,
        phases=[p for p in (
            PhaseConfig("target", a.target_seconds, a.target_lr, shapes["target"], init_from=a.init_target),
            PhaseConfig("draft", a.draft_seconds, a.draft_lr, shapes["draft"], distill_weight=a.distill_weight,
                        init_from=a.init_draft),
        ) if a.only in ("both", p.role)],
        teacher=a.teacher,
    )


if __name__ == "__main__":  # python -m lsp_copilot.training.accelerated --out runs/accel --parts $OUT
    summary = run(parse_args())
    print(json.dumps({k: summary[k] for k in ("target", "draft", "total_seconds") if k in summary}, default=str))
