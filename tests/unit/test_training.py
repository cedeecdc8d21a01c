"""Training pipeline of the embedded models: tokenizer, FIM examples, and `lsp-copilot train` on a tiny corpus."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lsp_copilot.training.corpus import SourceFile, is_held_out, split_corpus
from lsp_copilot.training.data import ChunkSizes, CrossFileIndex, chunk_file, extract_definitions
from lsp_copilot.training.fim import FimRates, call_line, choose_middle, make_example
from lsp_copilot.training.tokenizer import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, SPECIAL_TOKENS

SOURCE = '''import os


def join_all(parts):
    """Join path parts."""
    return os.path.join(*parts)


class Box:
    """A box."""

    def open(self, force=False):
        """Open the box."""
        return True
'''


def test_held_out_split_is_fixed() -> None:
    assert is_held_out("json/decoder.py") and is_held_out("email/utils.py")
    assert is_held_out("test/test_json/test_dump.py")
    assert not is_held_out("os.py") or is_held_out("os.py") == is_held_out("os.py")
    files = [SourceFile(f"m{i}.py", "x = 1\n") for i in range(2000)]
    train, valid = split_corpus(files)
    assert 10 < len(valid) < 60 and len(train) + len(valid) == 2000


def test_whole_line_middles_start_and_end_on_line_boundaries() -> None:
    rng = random.Random(0)
    rates = FimRates(whole_lines=1.0, line_rest=0.0)
    for _ in range(200):
        start, end = choose_middle(SOURCE, rng, rates)
        middle = SOURCE[start:end]
        assert end == len(SOURCE) or SOURCE[end - 1] == "\n"
        assert start == 0 or SOURCE[start - 1] == "\n" or SOURCE[start - 1] in " \t"
        assert middle.count("\n") <= 3


def test_examples_render_psm_and_spm() -> None:
    rng = random.Random(1)
    kinds = set()
    for _ in range(100):
        pieces = make_example(SOURCE, "pkg/box.py", [], rng, FimRates())
        if FIM_MIDDLE in pieces:
            i = pieces.index(FIM_PREFIX)
            if pieces[i + 1] == FIM_SUFFIX:  # SPM: suffix, then prefix and middle
                kinds.add("spm")
                suffix, prefix, middle = pieces[i + 2], pieces[i + 4], pieces[i + 5]
            else:
                kinds.add("psm")
                prefix, suffix, middle = pieces[i + 1], pieces[i + 3], pieces[i + 5]
            assert prefix + middle + suffix == SOURCE and pieces[-1] == SPECIAL_TOKENS[0]
        else:
            kinds.add("l2r")
    assert kinds == {"psm", "spm", "l2r"}


def test_with_context_the_middle_is_often_a_line_calling_a_shown_definition() -> None:
    user = "import box\n\n\ndef build(parts):\n    path = box.join_all(parts)\n    return path.upper()\n"
    context = [("pkg/box.py", 'def join_all(parts):\n    """Join path parts."""\n')]
    rng = random.Random(3)
    middles = []
    for _ in range(200):
        pieces = make_example(user, "pkg/use.py", context, rng, FimRates(fim=1.0, call_lines=0.5))
        middles.append(pieces[-2])
    calls = middles.count("path = box.join_all(parts)\n")  # from after the indentation to the end of the line
    assert 70 <= calls <= 130  # about half; the rest keep the usual mixture
    assert call_line(user, [("pkg/other.py", "def unrelated():\n    pass\n")], rng) is None
    no_context = [make_example(user, "pkg/use.py", [], rng, FimRates(fim=1.0))[-2] for _ in range(200)]
    assert no_context.count("path = box.join_all(parts)\n") < 40


def test_definitions_and_cross_file_context() -> None:
    defs = {d.name: d.text for d in extract_definitions(SOURCE)}
    assert defs["join_all"] == 'def join_all(parts):\n    """Join path parts."""'
    assert "open" in defs and "Box" in defs
    user = SourceFile("pkg/use.py", "from pkg.box import join_all\n\nx = join_all(['a'])\n")
    index = CrossFileIndex([SourceFile("pkg/box.py", SOURCE), user])
    context = index.context_for(user, user.text)
    assert context == [("pkg/box.py", 'def join_all(parts):\n    """Join path parts."""\n')]
    assert "".join(chunk_file(SOURCE, random.Random(0), ChunkSizes(20, 40, long_rate=0.5, long_max_chars=90))) == SOURCE


def test_train_command_runs_and_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("textwrap.py", "bisect.py", "heapq.py"):
        import sysconfig

        (corpus / name).write_text((Path(sysconfig.get_paths()["stdlib"]) / name).read_text())
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "lsp_copilot", "train", "--out", str(out), "--corpus", str(corpus),
           "--max-steps", "3", "--seq-len", "64", "--batch-size", "2", "--minutes", "5", "--draft-minutes", "5"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    for role in ("target", "draft"):
        model = AutoModelForCausalLM.from_pretrained(out / role)
        state = json.loads((out / role / "train_state.json").read_text())
        assert state["tokens_seen"] == 3 * 2 * 64 and state["history"][-1]["valid_loss"] > 0
        assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(out / role))
    tok = AutoTokenizer.from_pretrained(out / "target")
    ids = tok(f"{FIM_PREFIX}x = 1{FIM_SUFFIX}{FIM_MIDDLE}", add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids(FIM_PREFIX) in ids
    assert tok.decode(ids) == f"{FIM_PREFIX}x = 1{FIM_SUFFIX}{FIM_MIDDLE}"
    subprocess.run([*cmd, "--resume", "--only", "target", "--call-lines", "0.5", "--rename-rate", "0.5"], check=True,
                   capture_output=True, timeout=600)
    state = json.loads((out / "target" / "train_state.json").read_text())
    assert state["tokens_seen"] == 2 * 3 * 2 * 64  # continued from the saved counters
    assert state["config"]["call_lines"] == 0.5 and state["config"]["rename_rate"] == 0.5
    # What ships: fp16 weights (the CPU trainer saves fp32), loadable, the same model up to fp16 rounding.
    from lsp_copilot.training.export import export_model

    export_model(out / "target", tmp_path / "shipped")
    shipped = AutoModelForCausalLM.from_pretrained(tmp_path / "shipped", dtype=torch.float32)
    trained = AutoModelForCausalLM.from_pretrained(out / "target", dtype=torch.float32)
    assert (tmp_path / "shipped" / "model.safetensors").stat().st_size < 0.6 * (
        out / "target" / "model.safetensors").stat().st_size
    assert not (tmp_path / "shipped" / "optimizer.pt").exists()
    for (name, a), (_, b) in zip(trained.state_dict().items(), shipped.state_dict().items(), strict=True):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), name


def test_accelerated_run_trains_both_models_and_splits_them_into_parts(tmp_path: Path) -> None:
    """The accelerator recipe, on the CPU with tiny shapes: target, then a draft distilled from it, both loadable,
    and the tar parts a lent machine returns reassemble into the same directories."""
    import sysconfig

    from lsp_copilot.training.accelerated import join_parts

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("textwrap.py", "bisect.py", "heapq.py", "shlex.py"):
        (corpus / name).write_text((Path(sysconfig.get_paths()["stdlib"]) / name).read_text())
    tiny = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 1, "num_key_value_heads": 1,
            "intermediate_size": 64}
    out, parts = tmp_path / "accel", tmp_path / "parts"
    cmd = [sys.executable, "-m", "lsp_copilot", "train", "--accelerated", "--out", str(out), "--parts", str(parts),
           "--corpus", str(corpus), "--device", "cpu", "--target-seconds", "3", "--draft-seconds", "2",
           "--seq-len", "64", "--batch-size", "2", "--workers", "1", "--eval-seconds", "1", "--eval-rows", "2",
           "--shapes", json.dumps({"target": tiny, "draft": tiny}), "--rename-rate", "0.5", "--call-lines", "0.3"]
    run = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    assert "renaming 50% of files per epoch" in run.stderr
    for role in ("target", "draft"):
        model = AutoModelForCausalLM.from_pretrained(out / role)
        assert str(model.dtype) == "torch.float16"
        state = json.loads((out / role / "train_state.json").read_text())
        assert state["tokens_seen"] > 0 and state["history"][-1]["valid_loss"] > 0
        joined = join_parts(parts, role, tmp_path / "joined")
        assert (joined / "model.safetensors").read_bytes() == (out / role / "model.safetensors").read_bytes()
    draft_state = json.loads((out / "draft" / "train_state.json").read_text())
    assert "agreement" in draft_state["history"][-1]
    assert draft_state["run"]["rename_rate"] == 0.5 and draft_state["run"]["fim"]["call_lines"] == 0.3
    # continue the draft alone from its weights, distilling from the saved target
    again = tmp_path / "again"
    subprocess.run([*cmd[: cmd.index("--out")], "--out", str(again), *cmd[cmd.index("--corpus"):], "--only", "draft",
                    "--teacher", str(out / "target"), "--init-draft", str(out / "draft")],
                   check=True, capture_output=True, timeout=600)
    assert not (again / "target").exists()
    state = json.loads((again / "draft" / "train_state.json").read_text())
    assert state["tokens_seen"] > 0 and "agreement" in state["history"][-1]


def test_epochs_do_not_depend_on_the_hash_seed() -> None:
    """The same seed gives the same examples in any process (sets of module names are iterated sorted)."""
    script = ("import hashlib\nfrom lsp_copilot.training.corpus import iter_stdlib_files, split_corpus\n"
              "from lsp_copilot.training.data import CrossFileIndex, build_examples\n"
              "from lsp_copilot.training.fim import FimRates\n"
              "files = [f for f in split_corpus(iter_stdlib_files())[0]\n"
              "         if f.path.startswith(('logging/', 'importlib/', 'concurrent/'))]\n"
              "ex = build_examples(files, CrossFileIndex(files), 3, FimRates(call_lines=0.5), 1.0)\n"
              "print(hashlib.sha1(repr(ex).encode()).hexdigest())\n")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(digests) == 1 and len(next(iter(digests)).strip()) == 40
