"""Renaming augmentation of training files: what it may rename, that programs keep their behaviour, round trips."""

from __future__ import annotations

import ast
import random

from lsp_copilot.training.augment import Renaming, apply_renames, draw_renames, renamable_names, rename_locals
from lsp_copilot.training.corpus import iter_stdlib_files, split_corpus
from lsp_copilot.training.data import ChunkSizes, CrossFileIndex, build_examples
from lsp_copilot.training.fim import FimRates

PROGRAM = '''import os.path as osp
from collections import Counter

LIMIT = 3


def count_words(text, limit=LIMIT):
    """Public: `text` and `limit` may be passed by keyword from elsewhere."""
    counts = Counter(word.lower() for word in text.split())
    top = [(w, n) for w, n in counts.most_common() if n > 0]
    return top[:limit]


def _scale(values, factor=2):
    total = 0
    scaled = []
    for value in values:
        scaled.append(value * factor)
        total += value
    label = f"{total}"
    return scaled, label


def make_counter():
    count = 0

    def bump(step):
        nonlocal count
        count += step
        return count
    return bump


class Shelf:
    size = 2

    def fill(self, items):
        kept = [item for item in items if item]
        self.items = kept[: self.size]
        return len(self.items)


def run():
    bump = make_counter()
    first = bump(2)
    second = bump(step=3)
    pairs = count_words("a b a c", limit=2)
    scaled, label = _scale([1, 2, 3], factor=3)
    shelf = Shelf()
    square = lambda number: number * number
    try:
        raise ValueError("x")
    except ValueError as error:
        message = str(error)
    return first, second, pairs, scaled, label, shelf.fill([0, 1, 2, 3]), square(4), message, osp.join("a", "b")
'''
POOL = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lam", "mu", "nu",
        "xi", "omicron", "pi_", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]


def run_program(source: str) -> object:
    namespace: dict[str, object] = {}
    exec(compile(source, "<program>", "exec"), namespace)
    return namespace["run"]()  # type: ignore[operator]


def test_only_function_local_names_are_renamable() -> None:
    names = set(renamable_names(PROGRAM))
    # locals, loop and comprehension variables, private functions' parameters, closures, except targets, lambdas
    assert {"counts", "top", "values", "scaled", "value", "bump", "kept", "item", "error", "message", "number",
            "first", "label", "word"} <= names
    # module and class bindings, public signatures, attributes, imports, keywords used in calls (`step`, `factor`),
    # names in f-strings (`total`) and in nonlocal statements (`count`)
    assert not names & {"LIMIT", "count_words", "text", "limit", "self", "items", "size", "Shelf", "osp", "Counter",
                        "os", "path", "factor", "run", "_scale", "step", "total", "count"}


def test_renamed_program_behaves_the_same() -> None:
    renamed = rename_locals(PROGRAM, POOL, random.Random(3), share=1.0)
    assert renamed != PROGRAM
    assert "counts" not in renamed and "def count_words(text, limit=LIMIT):" in renamed
    assert "self.items" in renamed and 'f"{total}"' in renamed  # attributes and f-string names keep their names
    assert run_program(renamed) == run_program(PROGRAM)


def test_dynamic_code_is_left_alone() -> None:
    source = "def f(a):\n    b = a + 1\n    return locals()\n"
    assert not renamable_names(source)
    assert rename_locals(source, POOL, random.Random(0), share=1.0) == source
    assert rename_locals("def f(:\n", POOL, random.Random(0)) == "def f(:\n"  # not Python: unchanged


def test_renaming_round_trips_on_stdlib_files() -> None:
    """New names are ones the file does not contain, so the inverse renaming restores it byte for byte."""
    files = [f for f in split_corpus(iter_stdlib_files())[0] if f.path.count("/") <= 1][::40]
    pool = sorted({n for f in files for n in renamable_names(f.text)})
    rng = random.Random(5)
    renamed_files = 0
    for f in files:
        mapping = draw_renames(f.text, pool, rng, share=1.0)
        out = apply_renames(f.text, mapping)
        if mapping:
            renamed_files += 1
            assert out != f.text
            ast.parse(out)
        assert apply_renames(out, {new: old for old, new in mapping.items()}) == f.text, f.path
    assert renamed_files >= len(files) // 3


def test_epochs_with_renaming_differ_only_where_asked() -> None:
    files = [f for f in split_corpus(iter_stdlib_files())[0] if f.path in ("textwrap.py", "shlex.py", "bisect.py")]
    index = CrossFileIndex(files)
    sizes = ChunkSizes(100_000, 100_000)  # one chunk per file
    plain = build_examples(files, index, 1, FimRates(fim=0.0), 0.0, sizes)
    always = build_examples(files, index, 1, FimRates(fim=0.0), 0.0, sizes,
                            Renaming(tuple(POOL), rate=1.0, share=1.0))
    bodies = sorted(max(ex, key=len) for ex in always)  # the file's text is an example's longest piece
    assert bodies != sorted(max(ex, key=len) for ex in plain)
    for body in bodies:
        ast.parse(body)
        assert any(name in body for name in POOL)
    assert "def dedent(text):" in "".join(bodies)  # a public signature keeps its parameter names
