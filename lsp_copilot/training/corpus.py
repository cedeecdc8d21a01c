"""The training corpus: the running Python's standard library sources, with a fixed held-out split."""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Whole packages kept out of training: validation data and the cross-file evaluation set
# (their modules call each other, which is what cross-file context has to find).
HELD_OUT_PACKAGES = ("email", "json", "xmlrpc", "wsgiref", "tomllib")
# Their tests are held out too, so the code is never seen through a test file.
HELD_OUT_TEST_DIRS = ("test_email", "test_json", "test_xmlrpc.py", "test_wsgiref.py", "test_tomllib")
# Besides the packages, about this share of the remaining files (chosen by a hash of the path) is held out.
HELD_OUT_PER_MILLE = 15


@dataclass(frozen=True)
class SourceFile:
    """One UTF-8 source file of the corpus."""

    path: str  # relative to the stdlib root, with forward slashes
    text: str


def stdlib_root() -> Path:
    """The directory of the running Python's standard library (its `Lib/`)."""
    return Path(sysconfig.get_paths()["stdlib"])


def is_held_out(rel_path: str) -> bool:
    """True if `rel_path` (relative to the stdlib root) belongs to the validation split."""
    parts = rel_path.split("/")
    if parts[0] in HELD_OUT_PACKAGES:
        return True
    if parts[0] == "test" and len(parts) > 1 and parts[1] in HELD_OUT_TEST_DIRS:
        return True
    digest = hashlib.sha256(rel_path.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < HELD_OUT_PER_MILLE


def iter_stdlib_files(root: Path | None = None) -> list[SourceFile]:
    """All `.py` files under the stdlib root that decode as UTF-8, sorted by path (site-packages excluded)."""
    root = root or stdlib_root()
    files: list[SourceFile] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "site-packages" in rel.split("/") or "dist-packages" in rel.split("/"):
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a handful of test files are deliberately not UTF-8
        if text.strip():
            files.append(SourceFile(rel, text))
    return files


def split_corpus(files: list[SourceFile]) -> tuple[list[SourceFile], list[SourceFile]]:
    """(train, validation) by the fixed rule of `is_held_out`."""
    train = [f for f in files if not is_held_out(f.path)]
    valid = [f for f in files if is_held_out(f.path)]
    return train, valid
