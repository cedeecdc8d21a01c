"""Token streams for training: chunks of the corpus, cross-file definitions, FIM, packed into fixed-length rows."""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from lsp_copilot.training.augment import CalleeRenaming, Renaming
from lsp_copilot.training.corpus import SourceFile
from lsp_copilot.training.fim import FimRates, make_example

# A name followed by a call or attribute access: the uses that a definition elsewhere explains.
_CALLED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]{3,})\s*[(.]")
_GENERIC_NAMES = {"test", "main", "self", "setUp", "tearDown", "run", "format", "__init__"}


@dataclass(frozen=True)
class Definition:
    """A top-level function or class: its header line(s) and the first line of its docstring."""

    name: str
    text: str


def extract_definitions(source: str) -> list[Definition]:
    """Top-level defs and classes (and public methods of classes) as signature + docstring summary."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    out: list[Definition] = []

    def add(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, indent: str) -> None:
        body_line = node.body[0].lineno if node.body else node.lineno
        header = "\n".join(lines[node.lineno - 1 : max(node.lineno, body_line - 1)])
        if not header.rstrip().endswith(":"):
            header = lines[node.lineno - 1]
        doc = ast.get_docstring(node, clean=True)
        text = header.rstrip()
        if doc:
            text += f'\n{indent}    """{doc.splitlines()[0]}"""'
        out.append(Definition(node.name, text))

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add(node, "")
        elif isinstance(node, ast.ClassDef):
            add(node, "")
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_"):
                    add(sub, "    ")
    return out


def imported_modules(source: str) -> set[str]:
    """Dotted names of modules a file imports (absolute, best effort)."""
    mods: set[str] = set()
    for m in re.finditer(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", source, re.M):
        mods.add(m.group(1) or m.group(2))
    return mods


def module_name(path: str) -> str:
    """`email/utils.py` -> `email.utils`; `os.py` -> `os`; a package's `__init__.py` -> the package."""
    name = path[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


class CrossFileIndex:
    """For a file, definitions from the modules it imports and from its own directory, keyed by name."""

    def __init__(self, files: list[SourceFile]) -> None:
        self.defs_by_module: dict[str, list[Definition]] = {}
        self.path_by_module: dict[str, str] = {}
        self.dir_modules: dict[str, list[str]] = {}
        for f in files:
            mod = module_name(f.path)
            self.defs_by_module[mod] = extract_definitions(f.text)
            self.path_by_module[mod] = f.path
            self.dir_modules.setdefault(f.path.rsplit("/", 1)[0] if "/" in f.path else "", []).append(mod)

    def context_for(
        self, f: SourceFile, chunk: str, max_chars: int = 900, max_files: int = 3
    ) -> list[tuple[str, str]]:
        """[(path, definitions text)] for names called in `chunk` and defined in another related module."""
        own = module_name(f.path)
        used_names = set(_CALLED.findall(chunk)) - _GENERIC_NAMES
        candidates = [m for m in sorted(imported_modules(f.text)) if m in self.defs_by_module]  # (a set: sorted, so
        # the examples do not depend on PYTHONHASHSEED)
        directory = f.path.rsplit("/", 1)[0] if "/" in f.path else None
        if directory is not None and not directory.startswith("test"):
            candidates += self.dir_modules.get(directory, [])
        picked: dict[str, list[str]] = {}
        seen: set[str] = set()
        used = 0
        for mod in dict.fromkeys(candidates):
            if mod == own:
                continue
            for d in self.defs_by_module[mod]:
                if d.name in used_names and d.name not in seen and used + len(d.text) <= max_chars:
                    path = self.path_by_module[mod]
                    if path not in picked and len(picked) >= max_files:
                        continue
                    picked.setdefault(path, []).append(d.text)
                    seen.add(d.name)
                    used += len(d.text) + 1
        return [(path, "\n".join(texts) + "\n") for path, texts in picked.items()]


@dataclass(frozen=True)
class ChunkSizes:
    """Lengths of training chunks in characters: mostly short, with a share of long ones for long-context runs."""

    min_chars: int = 300
    max_chars: int = 1600
    long_rate: float = 0.0  # share of chunks drawn from [max_chars, long_max_chars] instead
    long_max_chars: int = 6000

    def draw(self, rng: random.Random) -> int:
        if self.long_rate and rng.random() < self.long_rate:
            return rng.randint(self.max_chars, self.long_max_chars)
        return rng.randint(self.min_chars, self.max_chars)


def chunk_file(text: str, rng: random.Random, sizes: ChunkSizes = ChunkSizes()) -> list[str]:
    """Cut a file into consecutive chunks of random length that start and end on line boundaries."""
    lines = text.splitlines(keepends=True)
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    target = sizes.draw(rng)
    for line in lines:
        cur.append(line)
        size += len(line)
        if size >= target:
            chunks.append("".join(cur))
            cur, size, target = [], 0, sizes.draw(rng)
    if cur:
        chunks.append("".join(cur))
    return chunks


def build_examples(
    files: list[SourceFile], index: CrossFileIndex, seed: int, rates: FimRates, cross_file_rate: float = 0.35,
    sizes: ChunkSizes = ChunkSizes(), renaming: Renaming | None = None, callees: CalleeRenaming | None = None,
) -> list[list[str]]:
    """One epoch of examples (as text pieces), shuffled; a new seed gives new cuts, FIM splits and renamings."""
    rng = random.Random(seed)
    examples: list[list[str]] = []
    for f in files:
        text = renaming.apply(f, rng) if renaming is not None else f.text  # no draw without renaming
        for chunk in chunk_file(text, rng, sizes):
            context = index.context_for(f, chunk) if rng.random() < cross_file_rate else []
            if context and callees is not None:  # (no draw without it: the shipped recipe's stream is unchanged)
                chunk, context = callees.apply(chunk, context, rng)
            examples.append(make_example(chunk, f.path, context, rng, rates))
    rng.shuffle(examples)
    return examples


def tokenize_examples(tokenizer, examples: list[list[str]]) -> list[int]:
    """Concatenate every example's pieces, tokenized piece by piece, into one id stream."""
    flat = [p for ex in examples for p in ex]
    enc = tokenizer(flat, add_special_tokens=False)["input_ids"]
    return [i for ids in enc for i in ids]


def pack_rows(ids: list[int], seq_len: int) -> torch.Tensor:
    """[n_rows, seq_len + 1] rows of the stream; inputs are row[:-1], labels row[1:]."""
    n = (len(ids) - 1) // seq_len
    t = torch.tensor(ids[: n * seq_len + 1], dtype=torch.long)
    return torch.stack([t[i * seq_len : (i + 1) * seq_len + 1] for i in range(n)])


def iterate_batches(rows: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Shuffled batches [batch_size, seq_len + 1] over `rows`, one pass."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(rows.shape[0], generator=g)
    for i in range(0, len(order) - batch_size + 1, batch_size):
        yield rows[order[i : i + batch_size]]
