"""ContextSettings: the token budget and its split, and what the cross-file context and the workspace index may use."""

from __future__ import annotations

from dataclasses import dataclass, field

SECRET_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.gpg",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "credentials*", "*credentials.json", ".netrc", ".pgpass",
    ".npmrc", ".pypirc", "*.secret", "*.secrets",
)
SKIPPED_DIRS: tuple[str, ...] = (
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".idea", ".vscode", ".cache",
)


@dataclass
class ContextSettings:
    """What the model sees. Token counts use the engine's tokenizer; every field has a working default."""

    tree_wait_ms: float = 5.0  # how long a build waits for a background reparse before using the shifted old tree
    budget_tokens: int = 1536  # prefix + suffix + cross-file parts (the template's own tokens are not counted)
    exact_token_counts: bool = False  # tokenize the windows once more for exact counts (newline-led line sums are an
    # upper bound in practice; see context/windows.py)
    prefix_share: float = 0.75  # of what the parts leave, the prefix's share; the suffix gets the rest
    cross_file_share: float = 0.3  # at most this share of the budget goes to cross-file parts
    # Cross-file parts.
    enable_imports: bool = True
    enable_definitions: bool = True
    enable_snippets: bool = True
    enable_index: bool = True  # the background workspace index (definitions from files that are not open)
    definition_lookback_lines: int = 15  # identifiers used this many lines above the cursor (and on its line)
    definition_lookahead_lines: int = 5  # then those used this many lines below it
    definition_usage_lines: int = 200  # then the imported names most used this many lines around it (0: off)
    max_definitions: int = 8
    max_definition_lines: int = 12  # a type's text is kept whole up to this many lines, else header + members
    snippet_window_lines: int = 12
    snippet_stride_lines: int = 6
    snippet_query_lines: int = 12  # the lines above the cursor that the windows are compared with
    snippet_min_similarity: float = 0.15  # Jaccard over identifier sets
    snippet_duplicate_similarity: float = 0.8  # a window with this share of its identifiers around the cursor: dropped
    max_snippets: int = 3
    snippet_max_files: int = 10  # recently edited open documents scanned
    # Workspace index.
    index_max_files: int = 5000
    index_max_file_bytes: int = 1_000_000
    index_max_total_bytes: int = 200_000_000
    secret_patterns: tuple[str, ...] = SECRET_PATTERNS
    skipped_dirs: tuple[str, ...] = SKIPPED_DIRS
    extra_ignore: list[str] = field(default_factory=list)  # gitignore-style patterns applied to every root

    def __post_init__(self) -> None:
        if self.budget_tokens < 16:
            raise ValueError(f"context.budget_tokens must be at least 16, got {self.budget_tokens}")
        for name in ("prefix_share", "cross_file_share", "snippet_min_similarity", "snippet_duplicate_similarity"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"context.{name} must be between 0 and 1, got {value}")
        for name in ("snippet_window_lines", "snippet_stride_lines", "snippet_query_lines"):
            if getattr(self, name) < 1:
                raise ValueError(f"context.{name} must be at least 1, got {getattr(self, name)}")
