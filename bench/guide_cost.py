"""What name-guided decoding costs: the vocabulary index (once per engine), and each guided pick.

python bench/guide_cost.py [MODEL_DIR]   (default: the embedded target; names: those of email._header_value_parser,
uses: how email/headerregistry.py-like code would count them, a few per name)
"""

from __future__ import annotations

import random
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from lsp_copilot.context.symbols import reachable_names
from lsp_copilot.engine.guide import NameGuide, VocabIndex
from lsp_copilot.training.corpus import stdlib_root


def _quantiles(times: list[float]) -> str:
    times = sorted(times)
    return f"median {statistics.median(times):.3f} ms, p95 {times[int(0.95 * len(times))]:.3f} ms"


def main() -> None:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "lsp_copilot" / \
        "models" / "target"
    tokenizer = AutoTokenizer.from_pretrained(model)
    start = time.perf_counter()
    vocab = VocabIndex(tokenizer)
    build = time.perf_counter() - start
    text = (stdlib_root() / "email" / "_header_value_parser.py").read_text()
    imports = "\n".join(line for line in text.splitlines() if line.startswith(("import ", "from ")))
    found = reachable_names([], text, imports, "python")
    names = sorted(set(re.findall(r"^(?:def|class) (\w+)", text, re.M)) | (found.reachable if found else set()))
    rng = random.Random(0)
    uses = {n: rng.randrange(4) for n in rng.sample(names, 20)}
    start = time.perf_counter()
    NameGuide(vocab, "", names, uses, 0.5)
    spell = time.perf_counter() - start  # every name spelled once (cached by the index afterwards)
    starts, picks = [], []
    for typed in ["", "g", "get_", "quote", "Token", "_", "CFWS"] * 30:
        t0 = time.perf_counter()
        guide = NameGuide(vocab, typed, names, uses, 0.5)
        starts.append((time.perf_counter() - t0) * 1000)
        while True:  # walk one name to its end, as the engine does
            logits = torch.randn(len(vocab.texts))
            t0 = time.perf_counter()
            ids = guide.allowed()
            if ids is None:
                break
            token = int(torch.argmax(guide.apply(logits, ids)))
            picks.append((time.perf_counter() - t0) * 1000)
            guide.push(token)
    print(f"vocabulary {len(tokenizer)} tokens: index built in {build * 1000:.0f} ms; {len(names)} names spelled "
          f"in {spell * 1000:.1f} ms (once); per request: guide {_quantiles(starts)}; per guided pick (allowed "
          f"set + usage update): {_quantiles(picks)} over {len(picks)} picks")


if __name__ == "__main__":
    main()
