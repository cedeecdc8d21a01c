"""Renaming augmentations of training data: what they may rename, that programs keep their behaviour, round trips,
and cross-file examples whose called definitions get new names in both places."""

from __future__ import annotations

import ast
import random

from lsp_copilot.training.augment import (
    CalleeRenaming,
    Renaming,
    apply_renames,
    draw_renames,
    name_words,
    renamable_names,
    rename_locals,
)
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


def test_name_words_split_both_styles() -> None:
    assert name_words("_parse_header_value") == ["parse", "header", "value"]
    assert name_words("HTTPHeaderParser2") == ["http", "header", "parser", "2"]


def test_called_definitions_get_one_new_name_in_the_context_and_in_the_chunk() -> None:
    renaming = CalleeRenaming(("alpha", "beta", "gamma", "delta", "omega"), rate=1.0)
    context = [("pkg/util.py", 'def quote_string(value):\n    """Quote it."""\nclass TokenList(list):\n'
                               "def unused_helper(x):\n")]
    chunk = "    lp = util.quote_string(lp)\n    tl = TokenList()\n    return quote_string_extra(lp)\n"
    new_chunk, new_context = renaming.apply(chunk, context, random.Random(5))
    new_text = new_context[0][1]
    assert "quote_string(" not in new_chunk and "TokenList" not in new_chunk and "TokenList" not in new_text
    assert "quote_string_extra(lp)" in new_chunk  # whole words only
    assert "def unused_helper(x):" in new_text  # not called in the chunk: kept
    quote = new_chunk.split("util.", 1)[1].split("(", 1)[0]
    cls = new_chunk.split("tl = ", 1)[1].split("(", 1)[0]
    assert f"def {quote}(value):" in new_text and f"class {cls}(list):" in new_text
    assert quote.count("_") == 1 and cls[0].isupper() and "_" not in cls  # the original's style and word count
    assert renaming.apply(chunk, context, random.Random(5)) == (new_chunk, new_context)  # seeded: reproducible
    assert CalleeRenaming(("alpha",), rate=0.0).apply(chunk, context, random.Random(5)) == (chunk, context)


def test_callee_renaming_in_epochs_keeps_python_valid_and_changes_only_context_examples() -> None:
    files = [f for f in split_corpus(iter_stdlib_files())[0] if f.path.startswith(("importlib/", "logging/"))]
    callees = CalleeRenaming.for_corpus(files, rate=1.0)
    assert len(callees.words) > 20 and all(len(w) > 2 for w in callees.words)
    index = CrossFileIndex(files)
    sizes = ChunkSizes(100_000, 100_000)
    plain = build_examples(files, index, 3, FimRates(fim=0.0), 1.0, sizes)
    renamed = build_examples(files, index, 3, FimRates(fim=0.0), 1.0, sizes, callees=callees)
    assert len(plain) == len(renamed) and plain != renamed
    assert sorted(map(len, plain)) == sorted(map(len, renamed))  # same pieces per example, only names changed
    for example in renamed:
        if len(example) > 4:  # context blocks, then the file's header and its text
            ast.parse(max(example, key=len))
