"""What name-guided decoding costs: building the vocabulary index once, and one guided pick's allowed set.

python bench/guide_cost.py [MODEL_DIR]   (default: the embedded target; names: those of email._header_value_parser)
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from pathlib import Path

from transformers import AutoTokenizer

from lsp_copilot.context.symbols import reachable_names
from lsp_copilot.engine.guide import NameGuide, VocabIndex
from lsp_copilot.training.corpus import stdlib_root


def main() -> None:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "lsp_copilot" / \
        "models" / "target"
    tokenizer = AutoTokenizer.from_pretrained(model)
    start = time.perf_counter()
    vocab = VocabIndex(tokenizer)
    build = time.perf_counter() - start
    text = (stdlib_root() / "email" / "_header_value_parser.py").read_text()
    imports = "\n".join(line for line in text.splitlines() if line.startswith(("import ", "from ")))
    defined = set(re.findall(r"^(?:def|class) (\w+)", text, re.M))
    names = sorted(defined | (reachable_names([], text, imports, "python") or set()))
    times = []
    for typed in ["", "g", "get_", "quote", "Token", "_", "CFWS"] * 30:
        start = time.perf_counter()
        NameGuide(vocab, typed, names).allowed()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"vocabulary {len(tokenizer)} tokens: index built in {build * 1000:.0f} ms; {len(names)} names; "
          f"allowed set per pick: median {statistics.median(times):.3f} ms, p95 {times[int(0.95 * len(times))]:.3f} ms")


if __name__ == "__main__":
    main()
