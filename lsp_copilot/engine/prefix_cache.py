"""Prefix cache across requests: KV copies of earlier token sequences, reused for the longest shared prefix."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from lsp_copilot.engine.runners import KVSnapshot


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class PrefixCacheStats:
    """Counters of the prefix cache over the engine's life."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    snapshots: int = 0
    restores: int = 0
    evictions: int = 0

    @property
    def hit_rate(self) -> float:
        """Reused prompt tokens / prompt tokens."""
        return self.reused_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


class PrefixCache:
    """Snapshots of other documents' KV, bounded by bytes, least recently used evicted first.

    The live KV cache of the runner is the first tier (same document: roll back to the shared prefix); this store
    is the second (another document: copy its rows back in).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[int, KVSnapshot] = OrderedDict()
        self.bytes = 0
        self.stats = PrefixCacheStats()
        self._next_key = 0

    def best_match(self, tokens: Sequence[int]) -> tuple[KVSnapshot | None, int]:
        """The snapshot sharing the longest prefix with `tokens`, and that length (marked as recently used)."""
        best: KVSnapshot | None = None
        best_key, best_n = -1, 0
        for key, snap in self.entries.items():
            n = common_prefix(snap.tokens, tokens)
            if n > best_n:
                best, best_key, best_n = snap, key, n
        if best is not None:
            self.entries.move_to_end(best_key)
        return best, best_n

    def put(self, snap: KVSnapshot) -> None:
        """Keep a snapshot; drop entries it covers (their tokens are its prefix) and evict down to the bound."""
        if snap.nbytes > self.max_bytes or not snap.tokens:
            return
        for key in [k for k, s in self.entries.items() if common_prefix(s.tokens, snap.tokens) == len(s.tokens)]:
            self._drop(key)
        self.entries[self._next_key] = snap
        self._next_key += 1
        self.bytes += snap.nbytes
        self.stats.snapshots += 1
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self.entries)))
            self.stats.evictions += 1

    def clear(self) -> None:
        """Forget every snapshot."""
        self.entries.clear()
        self.bytes = 0

    def _drop(self, key: int) -> None:
        self.bytes -= self.entries.pop(key).nbytes
