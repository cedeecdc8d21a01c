"""Model runners: one KV cache and the tokens in it, extended by `forward` and rolled back by `truncate`.

`LeanRunner` drives `LeanLlama` (static cache, batch-invariant shapes); `HFRunner` drives any Hugging Face causal
LM through its `DynamicCache` (the generic path for architectures the lean module does not cover).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from lsp_copilot.engine.lean import LeanLlama


@dataclass
class KVSnapshot:
    """A copy of the first `len(tokens)` cache rows, kept by the prefix cache for another document."""

    tokens: tuple[int, ...]
    data: object  # runner-specific tensors
    nbytes: int


class Branches(Protocol):
    """Continuations of a runner's cached tokens decoded side by side, one forward for all of them; the runner's own
    cache is left as it is."""

    width: int  # branches still kept

    def forward(self, rows: list[list[int]]) -> Tensor: ...  # rows [K][S], equal lengths -> logits [K, S, V]
    def keep(self, rows: list[int]) -> None: ...  # drop every other branch


class Runner(Protocol):
    """A model with its KV cache: `tokens` are the tokens whose keys and values the cache holds, in order."""

    tokens: list[int]
    capacity: int
    exact: bool  # logits of a position do not depend on how the tokens were grouped into forwards

    def forward(self, new_tokens: list[int], all_logits: bool = True) -> Tensor: ...
    def branches(self, width: int, length: int) -> Branches: ...
    def truncate(self, n: int) -> None: ...
    def snapshot(self) -> KVSnapshot: ...
    def restore(self, snap: KVSnapshot, n: int) -> None: ...
    def kv_bytes_per_token(self) -> int: ...


class LeanRunner:
    """Runner over `LeanLlama`: short forwards (decode steps, verify passes) on the row-exact step path, prompts
    prefilled in chunks on the GEMM path."""

    def __init__(self, model: LeanLlama, prefill_chunk: int, step_rows: int = 16) -> None:
        self.model = model
        self.capacity = model.capacity
        self.tokens: list[int] = []
        self.exact = True  # set by Engine after check_row_exactness
        self.chunk = max(1, prefill_chunk)
        self.step_rows = step_rows  # forwards of at most this many tokens take the step path

    def forward(self, new_tokens: list[int], all_logits: bool = True) -> Tensor:
        """Append `new_tokens`; return logits [n, V] for each (or [1, V] for the last one when not all_logits)."""
        n = len(new_tokens)
        if n == 0:
            raise ValueError("forward needs at least one token")
        start = len(self.tokens)
        if start + n > self.capacity:
            raise ValueError(f"the KV cache holds {self.capacity} tokens; {start + n} needed")
        ids = torch.tensor(new_tokens, dtype=torch.long, device=self.model.device)
        if n <= self.step_rows:
            logits = self.model.forward_rows(ids, start, last_only=not all_logits)
        else:
            # from an empty cache the whole prompt is one causal call; after a cached prefix, masked chunks
            chunk = n if start == 0 else self.chunk
            outs = [self.model.forward_prefill(ids[lo:lo + chunk], start + lo, last_only=not all_logits)
                    for lo in range(0, n, chunk)]
            logits = outs[-1] if not all_logits else torch.cat(outs)
        self.tokens.extend(new_tokens)
        return logits

    def truncate(self, n: int) -> None:
        """Forget every token from position n on (the cache rows stay and are overwritten later)."""
        del self.tokens[n:]

    def branches(self, width: int, length: int) -> LeanBranches:
        """`width` continuations of the cached tokens, each at most `length` tokens long."""
        return LeanBranches(self.model, len(self.tokens), width, length, self.step_rows)

    def snapshot(self) -> KVSnapshot:
        """Copy the cache rows of the current tokens."""
        n = len(self.tokens)
        data = self.model.kv[:, :, :, :n].clone()
        return KVSnapshot(tuple(self.tokens), data, data.numel() * data.element_size())

    def restore(self, snap: KVSnapshot, n: int) -> None:
        """Load the first n rows of a snapshot into the cache; the cache then holds snap.tokens[:n]."""
        assert isinstance(snap.data, Tensor)
        self.model.kv[:, :, :, :n] = snap.data[:, :, :, :n]
        self.tokens = list(snap.tokens[:n])

    def kv_bytes_per_token(self) -> int:
        """Bytes of KV one token occupies."""
        return self.model.kv_bytes_per_token()


class LeanBranches:
    """Branches over `LeanLlama.forward_branches`: the shared prefix stays in the model's cache, each branch's own
    keys and values in a small cache of its own [layers, 2, K, kv, length, D]."""

    def __init__(self, model: LeanLlama, shared: int, width: int, length: int, step_rows: int = 16) -> None:
        if shared + length > model.capacity:
            raise ValueError(f"the KV cache holds {model.capacity} tokens; {shared + length} needed")
        self.model = model
        self.shared = shared
        self.width = width
        self.length = length
        self.used = 0  # own rows written so far (the same for every branch)
        self.step_rows = step_rows
        self.own = torch.zeros(len(model.layers), 2, width, model.n_kv, length, model.head_dim,
                               device=model.device, dtype=model.dtype)

    def forward(self, rows: list[list[int]]) -> Tensor:
        """Append rows[k] to branch k; logits [K, S, V]."""
        ids = torch.tensor(rows, dtype=torch.long, device=self.model.device)  # [K, S]
        if self.used + ids.shape[1] > self.length:
            raise ValueError(f"branches hold {self.length} tokens; {self.used + ids.shape[1]} needed")
        logits = self.model.forward_branches(ids, self.shared, self.own, self.used, self.step_rows)
        self.used += ids.shape[1]
        return logits

    def keep(self, rows: list[int]) -> None:
        self.own = self.own[:, :, rows].contiguous()
        self.width = len(rows)


class HFBranches:
    """Branches over a Hugging Face model: the runner's cache repeated once per branch, decoded as one batch."""

    def __init__(self, runner: HFRunner, width: int) -> None:
        self.model = runner.model
        self.device = runner.device
        self.width = width
        self.next_pos = len(runner.tokens)
        self.cache = runner._cache_cls()
        layers: list[Any] = list(runner.cache.layers)
        for i, layer in enumerate(layers):
            self.cache.update(layer.keys.repeat_interleave(width, 0), layer.values.repeat_interleave(width, 0), i)

    def forward(self, rows: list[list[int]]) -> Tensor:
        ids = torch.tensor(rows, dtype=torch.long, device=self.device)  # [K, S]
        pos = torch.arange(self.next_pos, self.next_pos + ids.shape[1], device=self.device).expand_as(ids)
        out = self.model(input_ids=ids, cache=self.cache, position_ids=pos, use_cache=True)
        self.next_pos += ids.shape[1]
        return out.logits.float()

    def keep(self, rows: list[int]) -> None:
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        layers: list[Any] = list(self.cache.layers)
        for layer in layers:
            layer.keys = layer.keys.index_select(0, index)
            layer.values = layer.values.index_select(0, index)
        self.width = len(rows)


class HFRunner:
    """Runner over any `transformers` causal LM with a DynamicCache (no batch-invariance guarantee)."""

    def __init__(self, model: Any, capacity: int, prefill_chunk: int) -> None:
        from transformers import DynamicCache

        self.model = model
        self.capacity = capacity
        self.tokens: list[int] = []
        self.exact = False
        self.chunk = prefill_chunk
        self._cache_cls = DynamicCache
        self.cache = DynamicCache()
        self.device = next(model.parameters()).device

    def forward(self, new_tokens: list[int], all_logits: bool = True) -> Tensor:
        """Append `new_tokens`; return logits [n, V] (or [1, V] for the last token)."""
        n = len(new_tokens)
        if n == 0:
            raise ValueError("forward needs at least one token")
        if len(self.tokens) + n > self.capacity:
            raise ValueError(f"the KV cache holds {self.capacity} tokens; {len(self.tokens) + n} needed")
        outs: list[Tensor] = []
        for lo in range(0, n, self.chunk):
            part = new_tokens[lo:lo + self.chunk]
            start = len(self.tokens) + lo
            ids = torch.tensor([part], dtype=torch.long, device=self.device)
            pos = torch.arange(start, start + len(part), device=self.device)[None]
            out = self.model(input_ids=ids, cache=self.cache, position_ids=pos, use_cache=True,
                             logits_to_keep=0 if all_logits else 1)
            if all_logits or lo + self.chunk >= n:
                outs.append(out.logits[0].float())
        self.tokens.extend(new_tokens)
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def truncate(self, n: int) -> None:
        """Forget every token from position n on."""
        if n < len(self.tokens):
            if n == 0:
                self.cache = self._cache_cls()
            else:
                self.cache.crop(n - len(self.tokens))  # transformers 5: a negative count of tokens to remove
            del self.tokens[n:]

    def branches(self, width: int, length: int) -> HFBranches:
        """`width` continuations of the cached tokens (as one batch; `length` is not needed here)."""
        return HFBranches(self, width)

    def snapshot(self) -> KVSnapshot:
        """Copy the cache tensors of every layer."""
        cache_layers: list[Any] = list(self.cache.layers)
        layers = [(layer.keys.clone(), layer.values.clone()) for layer in cache_layers]
        nbytes = sum(k.numel() * k.element_size() * 2 for k, _ in layers)
        return KVSnapshot(tuple(self.tokens), layers, nbytes)

    def restore(self, snap: KVSnapshot, n: int) -> None:
        """Rebuild the cache from a snapshot's first n rows."""
        assert isinstance(snap.data, list)
        self.cache = self._cache_cls()
        for i, (k, v) in enumerate(snap.data):
            self.cache.update(k[:, :, :n].clone(), v[:, :, :n].clone(), i)
        self.tokens = list(snap.tokens[:n])

    def kv_bytes_per_token(self) -> int:
        """Bytes of KV one token occupies."""
        cfg = self.model.config
        n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        elem = next(self.model.parameters()).element_size()
        return int(cfg.num_hidden_layers * 2 * n_kv * head_dim * elem)
