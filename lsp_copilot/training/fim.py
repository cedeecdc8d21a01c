"""Fill-in-the-middle training examples: where to cut a chunk, and the PSM / SPM orderings of the FIM paper."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from lsp_copilot.training.tokenizer import EOS, FILE_SEP, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX


@dataclass(frozen=True)
class FimRates:
    """Mixture of example kinds. Whole-line middles dominate: that is what an editor asks for most."""

    fim: float = 0.75  # share of examples turned into FIM; the rest stay left-to-right
    spm: float = 0.5  # share of FIM examples in suffix-prefix-middle order
    whole_lines: float = 0.5  # middle = 1-3 whole lines, starting at column 0 or after the indentation
    line_rest: float = 0.25  # middle = the rest of a line from a random column (typing mid-line)
    max_char_middle: int = 240  # char-level middles are at most this long
    call_lines: float = 0.0  # share of FIM examples with cross-file context whose middle is a line calling one of
    # the context's definitions (teaches using what the index shows; the shipped weights used 0.25)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n" and i + 1 < len(text):
            starts.append(i + 1)
    return starts


def choose_middle(text: str, rng: random.Random, rates: FimRates) -> tuple[int, int]:
    """Pick [start, end) of the middle of `text` by the mixture in `rates`."""
    starts = _line_starts(text)
    r = rng.random()
    if r < rates.whole_lines + rates.line_rest and len(starts) > 1:
        i = rng.randrange(len(starts))
        line_end = text.find("\n", starts[i])
        line_end = len(text) if line_end < 0 else line_end + 1
        if r < rates.whole_lines:
            n_lines = rng.choices((1, 2, 3), weights=(0.65, 0.2, 0.15))[0]
            end_line = min(i + n_lines, len(starts)) - 1
            end = text.find("\n", starts[end_line])
            end = len(text) if end < 0 else end + 1
            start = starts[i]
            if rng.random() < 0.5:  # cursor after the indentation, as when the editor auto-indents
                line = text[start:line_end]
                start += len(line) - len(line.lstrip(" \t"))
            return start, max(start, end)
        start = rng.randrange(starts[i], line_end)
        return start, line_end
    # Character-level split with a bounded middle.
    start = rng.randrange(len(text) + 1)
    end = min(len(text), start + rng.randrange(rates.max_char_middle + 1))
    return start, end


DEFINED_NAME = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)


def call_line(text: str, context: list[tuple[str, str]], rng: random.Random) -> tuple[int, int] | None:
    """[start, end) of a random line of `text` that calls a name defined in `context` (from after its indentation
    to its end), or None when no line does."""
    names = {name for _, ctx_text in context for name in DEFINED_NAME.findall(ctx_text)}
    if not names:
        return None
    call = re.compile(rf"\b(?:{'|'.join(map(re.escape, sorted(names)))})\s*\(")
    lines = []
    for start in _line_starts(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        line = text[start:end]
        if call.search(line) and not line.lstrip().startswith(("def ", "class ", "#")):
            lines.append((start + len(line) - len(line.lstrip(" \t")), end))
    return rng.choice(lines) if lines else None


def render_fim(prefix: str, middle: str, suffix: str, spm: bool) -> list[str]:
    """The example as a list of pieces, each tokenized separately (so the cut never merges tokens).

    PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <eos>
    SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle <eos>  (the FIM paper's SPM variant, as StarCoder)
    """
    if spm:
        return [FIM_PREFIX, FIM_SUFFIX, suffix, FIM_MIDDLE, prefix, middle, EOS]
    return [FIM_PREFIX, prefix, FIM_SUFFIX, suffix, FIM_MIDDLE, middle, EOS]


def render_file_header(path: str) -> list[str]:
    """`<file_sep>path` and a newline: how each file of a repository-level prompt starts."""
    return [FILE_SEP, path + "\n"]


def make_example(
    text: str, path: str, context: list[tuple[str, str]], rng: random.Random, rates: FimRates
) -> list[str]:
    """One training example from a chunk of a file, with optional cross-file `context` [(path, text)]."""
    pieces: list[str] = []
    for ctx_path, ctx_text in context:
        pieces += [*render_file_header(ctx_path), ctx_text]
    if context or rng.random() < 0.3:
        pieces += render_file_header(path)
    if rng.random() >= rates.fim:
        return [*pieces, text, EOS]
    # (no random draw when call-line middles are off: the shipped recipe's random stream stays what it was)
    span = call_line(text, context, rng) if context and rates.call_lines and rng.random() < rates.call_lines \
        else None
    start, end = span if span is not None else choose_middle(text, rng, rates)
    return pieces + render_fim(text[:start], text[start:end], text[end:], spm=rng.random() < rates.spm)
