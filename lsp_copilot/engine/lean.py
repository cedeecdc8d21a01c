"""A compact Llama forward pass over a preallocated static KV cache, built from a Hugging Face model's weights.

Why not the HF module: at editor model sizes a decode step is dominated by per-call overhead (module dispatch,
cache bookkeeping), so this is gpt-fast's recipe: fused QKV and gate/up projections, RoPE tables computed once,
one KV tensor written in place, no per-step allocation beyond activations.

Batch invariance (what makes speculation lossless): CPU GEMM kernels pick different reduction orders for different
row counts and different reduction lengths, so a k-token verify pass would not reproduce a 1-token decode step bit
for bit and greedy argmax could flip on near-ties. Here every reduction has a fixed shape:
- every forward is padded to a multiple of `row_quantum` rows (row results of the projections do not depend on
  the row count once it is a multiple of the quantum);
- attention runs over key blocks of `attn_block` positions aligned at 0: scores and value products have the same
  reduction length in every call, keys a query must not see are exact zeros after the softmax numerator, and the
  per-block partial sums are combined by `cumsum`, a sequential scan, so trailing all-zero blocks add exactly 0.
The logits of a position are then a function of the tokens only, however they were grouped into forwards (plain
steps, verify passes, prefill chunks, prefix-cache reuse). `check_batch_invariance` tests this on loaded weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def lean_supported(model: Any) -> str | None:
    """None when `model` is a plain Llama this module reproduces, else the reason it is not."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        return f"architecture {getattr(cfg, 'model_type', None)!r} is not llama"
    if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
        return "biased projections"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act!r}"
    rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
    if rotary is None or getattr(rotary, "rope_type", "default") == "dynamic":
        return "dynamic or missing rotary embedding"
    return None


class LeanLlama:
    """Llama weights rearranged for decoding, plus the static KV cache [layers, 2, kv_heads, capacity, head_dim]."""

    def __init__(self, hf_model: Any, capacity: int, row_quantum: int, attn_block: int = 128) -> None:
        cfg = hf_model.config
        inner = hf_model.model
        p = next(hf_model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.n_heads: int = cfg.num_attention_heads
        self.n_kv: int = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim: int = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.group = self.n_heads // self.n_kv
        self.eps: float = cfg.rms_norm_eps
        self.quantum = max(1, row_quantum)
        self.block = attn_block
        self.capacity = -(-capacity // attn_block) * attn_block  # whole key blocks
        capacity = self.capacity
        self.vocab_size: int = cfg.vocab_size
        self.embed = inner.embed_tokens.weight.detach()  # [V, H]
        self.lm_head = hf_model.lm_head.weight.detach()  # [V, H] (the same storage when tied)
        self.final_norm = inner.norm.weight.detach()
        self.layers: list[dict[str, Tensor]] = []
        for layer in inner.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append({
                "in_norm": layer.input_layernorm.weight.detach(),
                "wqkv": torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]).detach().contiguous(),
                "wo": att.o_proj.weight.detach(),
                "post_norm": layer.post_attention_layernorm.weight.detach(),
                "wgu": torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach().contiguous(),
                "wdown": mlp.down_proj.weight.detach(),
            })
        # RoPE tables from the model's own inverse frequencies (covers its rope scaling): cos, sin [slots, head_dim]
        rotary = inner.rotary_emb
        slots = capacity + self.quantum  # padding rows of the last forward may run past `capacity`
        pos = torch.arange(slots, device=self.device, dtype=torch.float32)
        freqs = torch.outer(pos, rotary.inv_freq.to(self.device, torch.float32))
        emb = torch.cat([freqs, freqs], dim=-1) * float(getattr(rotary, "attention_scaling", 1.0))
        self.cos, self.sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)
        # Zero-filled so masked (never written) keys and values are finite: 0 * value must be exactly 0.
        self.kv = torch.zeros(len(self.layers), 2, self.n_kv, slots, self.head_dim, device=self.device,
                              dtype=self.dtype)
        self.key_pos = torch.arange(capacity, device=self.device).view(-1, 1, attn_block)  # [blocks, 1, block]
        self.ones = torch.ones(self.n_kv, 1, 1, device=self.device, dtype=self.dtype)
        self.scale = self.head_dim**-0.5

    def kv_bytes_per_token(self) -> int:
        """Bytes of cache one token occupies (all layers, keys and values)."""
        return len(self.layers) * 2 * self.n_kv * self.head_dim * self.kv.element_size()

    def _rms(self, x: Tensor, w: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def _rope(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        # x: [heads, S, D]; rotate_half convention of HF Llama
        half = self.head_dim // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def _attend(self, q: Tensor, cache: Tensor, nb: int, masked: Tensor) -> Tensor:
        """Blocked causal attention of q [n_kv, M, D] (query heads of a kv group stacked as rows) over nb key blocks."""
        n_kv, _, D = q.shape
        keys = cache[0, :, : nb * self.block].view(n_kv, nb, self.block, D)
        values = cache[1, :, : nb * self.block].view(n_kv, nb, self.block, D)
        scores = torch.matmul(q.unsqueeze(1), keys.transpose(-1, -2))  # [n_kv, nb, M, block], reduction over D
        scores.masked_fill_(masked, float("-inf"))
        weights = torch.exp(scores - scores.amax(dim=(1, 3), keepdim=True))  # exact zeros where masked
        # one fixed-length product per block: [V | 1] gives the numerator and the softmax denominator together
        values1 = torch.cat([values, self.ones.expand(n_kv, nb * self.block, 1).view(n_kv, nb, self.block, 1)], -1)
        partial = torch.matmul(weights, values1)  # [n_kv, nb, M, D + 1]
        total = partial.cumsum(dim=1)[:, -1]  # sequential over blocks: trailing zero blocks change nothing
        return total[..., :D] / total[..., D:]

    def forward(self, tokens: Tensor, start: int, logits_rows: slice | None = None) -> Tensor:
        """Run tokens [S] at positions start.. through the model, writing their KV; return logits [rows, V] fp32.

        S must be a multiple of `quantum` (callers pad) and start + S <= capacity + quantum. `logits_rows` picks
        the rows whose logits are computed (None = all); it must start and stop on multiples of `quantum`.
        """
        S = tokens.shape[0]
        cos, sin = self.cos[start:start + S], self.sin[start:start + S]  # [S, D]
        nb = -(-(start + S) // self.block)  # key blocks holding every position a query of this call may see
        # masked [nb, group*S, block]: row r (query position start + r % S) sees keys at positions <= its own
        q_pos = torch.arange(start, start + S, device=self.device).repeat(self.group)
        masked = self.key_pos[:nb] > q_pos.view(1, -1, 1)
        x = F.embedding(tokens, self.embed)  # [S, H]
        nq, nkv, D = self.n_heads * self.head_dim, self.n_kv * self.head_dim, self.head_dim
        for i, w in enumerate(self.layers):
            h = self._rms(x, w["in_norm"])
            qkv = F.linear(h, w["wqkv"])  # [S, (n_heads + 2 n_kv) D]
            q = qkv[:, :nq].view(S, self.n_heads, D).transpose(0, 1)  # [n_heads, S, D]
            k = qkv[:, nq:nq + nkv].view(S, self.n_kv, D).transpose(0, 1)  # [n_kv, S, D]
            v = qkv[:, nq + nkv:].view(S, self.n_kv, D).transpose(0, 1)
            q = self._rope(q, cos, sin) * self.scale
            cache = self.kv[i]  # [2, n_kv, slots, D]
            cache[0, :, start:start + S] = self._rope(k, cos, sin)
            cache[1, :, start:start + S] = v
            att = self._attend(q.reshape(self.n_kv, self.group * S, D), cache, nb, masked)  # [n_kv, group*S, D]
            att = att.view(self.n_heads, S, D).transpose(0, 1).reshape(S, nq)
            x = x + F.linear(att, w["wo"])
            h = self._rms(x, w["post_norm"])
            gate, up = F.linear(h, w["wgu"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, w["wdown"])
        if logits_rows is not None:
            x = x[logits_rows]
        return F.linear(self._rms(x, self.final_norm), self.lm_head).float()
