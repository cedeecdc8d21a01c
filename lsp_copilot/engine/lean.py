"""A compact Llama forward pass over a preallocated static KV cache, built from a Hugging Face model's weights.

Why not the HF module: at editor model sizes a decode step is dominated by per-call overhead (module dispatch,
cache bookkeeping) and by streaming the weights from memory once per forward, so this is gpt-fast's recipe: fused
QKV and gate/up projections stored pre-transposed ([in, out], the layout the small-row GEMM kernels read fastest),
RoPE tables computed once, one KV tensor written in place, one fused attention call per row.

Row exactness (what makes speculation lossless): CPU GEMM libraries pick kernels by row count, so a k-token verify
pass computed as one [k, H] GEMM would not reproduce a 1-token decode step bit for bit, and greedy argmax could flip
on near-ties. The step path (`forward_rows`, used by decode steps and verify passes) therefore computes every row
with the very operations a single-token step uses:
- a projection runs in one of three kernel classes, each of which gives a row the same bits whatever the row count:
  the row-kernel class (`rowkernel.py`, numba: every output element is one fixed fma chain over the input, so rows
  are exact by construction; it reads a weight once for up to 4 rows and is the fastest class here at 1 row and at
  k rows), the small-row class (row groups of at most `kernel_rows` = 3 rows: MKL's 1..3-row kernels agree bit for
  bit) or the GEMM class (one call of at least `gemm_min_rows` = 4 rows, zero-padded up to it: MKL's blocked kernel
  gives a row the same bits for every M >= 4). Which class a weight uses is fixed for the engine's life (a 1-row
  step and a verify pass must run the same one): `EngineSettings.row_kernel_weights` when the row kernel loads
  (`load_row_kernel`: fp32 on CPU, numba importable and compiling, results checked), else `gemm_weights` picks
  between the MKL classes (for the shipped model on a 2-core EPYC every weight is cheaper in the small-row class).
  `check_row_exactness` verifies the property at load (fallbacks: the MKL classes, then 1-row calls only);
- attention runs once per row, over exactly the keys that row sees (the reduction lengths of a single step at that
  position), the query heads of a KV group stacked as the query rows of one SDPA call (always `group` rows).
The logits of a decoded position are then bit-identical whether it came from a plain step or from any verify pass.
Prompts go through `forward_prefill` (one GEMM per projection, causal SDPA): fast, equal to the step path within
fp32 rounding only, which is harmless because the plain loop and the speculative loop share the same prefill.
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

RowKernel = Callable[[Tensor, Tensor], Tensor]  # x [n, in] @ w [in, out] with row bits independent of n


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


def load_row_kernel(device: torch.device, dtype: torch.dtype) -> tuple[RowKernel | None, str]:
    """The numba row-exact product (compiled now, or loaded from numba's disk cache) and "", or None and the reason
    it cannot serve this model (then the step path keeps the MKL kernel classes)."""
    if device.type != "cpu" or dtype != torch.float32:
        return None, f"the row kernel computes fp32 on the CPU (the model is {dtype} on {device})"
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86"):
        try:
            import llvmlite.binding as llvm

            if not llvm.get_host_cpu_features().get("fma", False):  # llvm.fma would become a libm call per element
                return None, "this CPU has no FMA instructions"
        except Exception as exc:  # llvmlite (numba's compiler) missing or broken: the import below says why
            log.debug("cannot read the CPU features: %r", exc)
    try:
        from lsp_copilot.engine.rowkernel import matmul_rows  # compiles, or loads numba's cache
    except Exception as exc:  # numba missing, or failing to compile on this platform
        return None, f"the numba row kernel is unavailable ({type(exc).__name__}: {exc})"
    return (matmul_rows, "") if row_kernel_works(matmul_rows) else \
        (None, "the numba row kernel gave wrong or row-count-dependent results")


def row_kernel_works(kernel: RowKernel) -> bool:
    """Whether `kernel` agrees with torch.mm (fp32 rounding) and gives rows 1..9 the same bits in every row count."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 77, generator=gen)  # shapes off every block size: the remainder paths run too
    w = torch.randn(77, 515, generator=gen)
    full = kernel(x, w)
    if not torch.allclose(full, torch.mm(x, w), rtol=1e-4, atol=1e-4):
        return False
    return all(torch.equal(kernel(x[lo:lo + k], w), full[lo:lo + k]) for k in range(1, 10) for lo in (0, 9 - k))


class LeanLlama:
    """Llama weights rearranged for decoding, plus the static KV cache [layers, 2, kv_heads, capacity, head_dim]."""

    def __init__(self, hf_model: Any, capacity: int, kernel_rows: int = 3,
                 gemm_weights: tuple[str, ...] = (), gemm_min_rows: int = 4, row_kernel: RowKernel | None = None,
                 row_kernel_weights: tuple[str, ...] = ()) -> None:
        cfg = hf_model.config
        inner = hf_model.model
        p = next(hf_model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.n_heads: int = cfg.num_attention_heads
        self.n_kv: int = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.head_dim: int = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.group = self.n_heads // self.n_kv
        self.eps: float = cfg.rms_norm_eps
        self.kernel_rows = max(1, kernel_rows)
        self.gemm_weights = frozenset(gemm_weights)  # weight names computed in the GEMM class
        self.gemm_min_rows = gemm_min_rows
        self.row_kernel = row_kernel  # None: every weight in the MKL classes
        self.row_kernel_weights = frozenset(row_kernel_weights)  # weight names computed by `row_kernel`
        self.capacity = capacity
        self.vocab_size: int = cfg.vocab_size
        self.embed = inner.embed_tokens.weight.detach()  # [V, H]

        def t(w: Tensor) -> Tensor:  # [out, in] -> contiguous [in, out]
            return w.detach().t().contiguous()

        self.lm_head_t = t(hf_model.lm_head.weight)  # [H, V]
        self.final_norm = inner.norm.weight.detach()
        self.layers: list[dict[str, Tensor]] = []
        for layer in inner.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append({
                "in_norm": layer.input_layernorm.weight.detach(),
                "wqkv": t(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])),  # [H, (nh+2kv)D]
                "wo": t(att.o_proj.weight),  # [nh D, H]
                "post_norm": layer.post_attention_layernorm.weight.detach(),
                "wgu": t(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),  # [H, 2I]
                "wdown": t(mlp.down_proj.weight),  # [I, H]
            })
        # RoPE tables from the model's own inverse frequencies (covers its rope scaling): cos, sin [capacity, 1, D].
        # rotate_half(x) * sin == roll(x, D/2) * [-sin_lo, sin_hi]: the sign is folded into the table (exact).
        rotary = inner.rotary_emb
        pos = torch.arange(capacity, device=self.device, dtype=torch.float32)
        freqs = torch.outer(pos, rotary.inv_freq.to(self.device, torch.float32))
        emb = torch.cat([freqs, freqs], dim=-1) * float(getattr(rotary, "attention_scaling", 1.0))
        half = self.head_dim // 2
        sin = emb.sin()
        sin[:, :half] = -sin[:, :half]
        self.cos = emb.cos().to(self.dtype).unsqueeze(1)
        self.sin_signed = sin.to(self.dtype).unsqueeze(1)
        self.kv = torch.zeros(len(self.layers), 2, self.n_kv, capacity, self.head_dim, device=self.device,
                              dtype=self.dtype)
        self.key_pos = torch.arange(capacity, device=self.device)

    def kv_bytes_per_token(self) -> int:
        """Bytes of cache one token occupies (all layers, keys and values)."""
        return len(self.layers) * 2 * self.n_kv * self.head_dim * self.kv.element_size()

    def _rms(self, x: Tensor, w: Tensor) -> Tensor:
        return F.rms_norm(x, (x.shape[-1],), w, self.eps)

    def _rope(self, x: Tensor, start: int) -> Tensor:
        """x [S, heads, D] at positions start..start+S-1, HF rotate_half convention."""
        S = x.shape[0]
        return x * self.cos[start:start + S] + x.roll(self.head_dim // 2, -1) * self.sin_signed[start:start + S]

    def drop_row_kernel(self) -> None:
        """Compute every weight in the MKL classes from now on (the row kernel failed a check)."""
        self.row_kernel = None

    def _mm_rows(self, x: Tensor, w: Tensor, name: str) -> Tensor:
        """x [n, in] @ w [in, out] (weight `name`) so that every row gets the bits it gets in any other row count.

        Row-kernel class when `name` is one of `row_kernel_weights` and the kernel is loaded; else GEMM class (one call
        of at least `gemm_min_rows` rows, zero rows padded, their outputs dropped) for `gemm_weights`; else row groups
        of at most `kernel_rows`.
        """
        if self.row_kernel is not None and name in self.row_kernel_weights:
            return self.row_kernel(x, w)
        n, r = x.shape[0], self.kernel_rows
        if name in self.gemm_weights and r > 1:  # kernel_rows == 1 is the all-GEMV fallback: no GEMM class then
            if n >= self.gemm_min_rows:
                return torch.mm(x, w)
            padded = torch.zeros(self.gemm_min_rows, x.shape[1], device=x.device, dtype=x.dtype)
            padded[:n] = x
            return torch.mm(padded, w)[:n]
        if n <= r:
            return torch.mm(x, w)
        out = torch.empty(n, w.shape[1], device=x.device, dtype=x.dtype)
        for lo in range(0, n, r):
            torch.mm(x[lo:lo + r], w, out=out[lo:lo + r])
        return out

    def _qkv(self, qkv: Tensor, start: int, cache: Tensor) -> Tensor:
        """Split fused qkv [S, (nh+2kv)D], rotate q and k, write k and v at start..; return q [S, nh, D]."""
        S, nh, nkv = qkv.shape[0], self.n_heads, self.n_kv
        qkv3 = qkv.view(S, nh + 2 * nkv, self.head_dim)
        qk = self._rope(qkv3[:, :nh + nkv], start)  # [S, nh + kv, D]
        cache[0, :, start:start + S] = qk[:, nh:].transpose(0, 1)
        cache[1, :, start:start + S] = qkv3[:, nh + nkv:].transpose(0, 1)
        return qk[:, :nh]

    @torch.inference_mode()
    def forward_rows(self, tokens: Tensor, start: int, last_only: bool = False) -> Tensor:
        """Row-exact step path: tokens [S] at positions start..; writes their KV; returns logits [S or 1, V] fp32."""
        S = tokens.shape[0]
        n_kv, group, D = self.n_kv, self.group, self.head_dim
        x = F.embedding(tokens, self.embed)  # [S, H]
        for i, w in enumerate(self.layers):
            cache = self.kv[i]  # [2, kv, capacity, D]
            h = self._rms(x, w["in_norm"])
            q = self._qkv(self._mm_rows(h, w["wqkv"], "wqkv"), start, cache)  # [S, nh, D]
            rows = []
            for s in range(S):  # each row attends over exactly its own keys 0..start+s, as a single step does
                n = start + s + 1
                qs = q[s].reshape(1, n_kv, group, D)  # query heads of a KV group as the rows of one call
                rows.append(F.scaled_dot_product_attention(qs, cache[0, :, :n].unsqueeze(0),
                                                           cache[1, :, :n].unsqueeze(0)))
            att = (rows[0] if S == 1 else torch.cat(rows)).reshape(S, self.n_heads * D)
            x = x + self._mm_rows(att, w["wo"], "wo")
            gate, up = self._mm_rows(self._rms(x, w["post_norm"]), w["wgu"], "wgu").chunk(2, -1)
            x = x + self._mm_rows(F.silu(gate) * up, w["wdown"], "wdown")
        if last_only:
            x = x[-1:]
        return self._mm_rows(self._rms(x, self.final_norm), self.lm_head_t, "lm_head").float()

    @torch.inference_mode()
    def forward_prefill(self, tokens: Tensor, start: int, last_only: bool = True) -> Tensor:
        """Prompt path: tokens [S] at positions start.. in one GEMM per projection; logits [S or 1, V] fp32."""
        S = tokens.shape[0]
        n_kv, D, end = self.n_kv, self.head_dim, start + tokens.shape[0]
        # allowed [S, end]: the query at position start + r sees keys at positions <= start + r; from position 0 this
        # is plain causal attention, whose kernel also skips the masked blocks
        allowed = None if start == 0 else self.key_pos[:end].view(1, -1) <= self.key_pos[start:end].view(-1, 1)
        x = F.embedding(tokens, self.embed)
        for i, w in enumerate(self.layers):
            cache = self.kv[i]
            h = self._rms(x, w["in_norm"])
            q = self._qkv(torch.mm(h, w["wqkv"]), start, cache)  # [S, nh, D]
            att = F.scaled_dot_product_attention(q.transpose(0, 1).unsqueeze(0), cache[0, :, :end].unsqueeze(0),
                                                 cache[1, :, :end].unsqueeze(0), attn_mask=allowed,
                                                 is_causal=allowed is None, enable_gqa=n_kv != self.n_heads)
            x = x + torch.mm(att[0].transpose(0, 1).reshape(S, self.n_heads * D), w["wo"])
            gate, up = torch.mm(self._rms(x, w["post_norm"]), w["wgu"]).chunk(2, dim=-1)
            x = x + torch.mm(F.silu(gate) * up, w["wdown"])
        if last_only:
            x = x[-1:]
        return torch.mm(self._rms(x, self.final_norm), self.lm_head_t).float()

    @torch.inference_mode()
    def forward_branches(self, tokens: Tensor, shared: int, own: Tensor, start: int, step_rows: int = 16) -> Tensor:
        """Several continuations of the cached sequence's first `shared` tokens in one pass (rerank candidates).

        tokens [K, S]: the next S tokens of each of K branches, at positions shared + start .. shared + start + S - 1.
        own [layers, 2, K, kv, length, D]: each branch's own keys and values (its position shared + j at row j);
        this call writes rows start .. start + S - 1. Token (k, s) attends to the shared keys 0 .. shared - 1 (read
        from `self.kv`, never written) and to branch k's own keys 0 .. start + s. Returns logits [K, S, V] fp32.
        A decode step (K * S at most `step_rows`) computes its projections as `forward_rows` does (each row the bits of
        a single step); longer passes use one GEMM each. Attention sums in another order than a plain forward, so the
        logits equal those of a plain forward within fp32 rounding, not bit for bit.
        """
        K, S = tokens.shape
        nh, n_kv, group, D = self.n_heads, self.n_kv, self.group, self.head_dim
        end = start + S  # own rows in use after this call
        pos = shared + start
        # own-key mask [S, end]: row s sees own rows 0 .. start + s
        own_allowed = self.key_pos[:end].view(1, -1) <= self.key_pos[start:end].view(-1, 1)
        scale = 1.0 / math.sqrt(D)

        rows = K * S
        step = rows <= step_rows  # a decode step: the projections of forward_rows

        def mm(a: Tensor, b: Tensor, name: str) -> Tensor:
            return self._mm_rows(a, b, name) if step else torch.mm(a, b)

        x = F.embedding(tokens.reshape(-1), self.embed)  # [K*S, H]
        for i, w in enumerate(self.layers):
            h = self._rms(x, w["in_norm"])
            qkv = mm(h, w["wqkv"], "wqkv").view(K, S, nh + 2 * n_kv, D)
            cos, sin = self.cos[pos:pos + S], self.sin_signed[pos:pos + S]  # [S, 1, D]
            qk = qkv[:, :, :nh + n_kv]
            qk = qk * cos + qk.roll(D // 2, -1) * sin  # RoPE at each token's position
            own[i, 0, :, :, start:end] = qk[:, :, nh:].transpose(1, 2)  # [K, kv, S, D]
            own[i, 1, :, :, start:end] = qkv[:, :, nh + n_kv:].transpose(1, 2)
            # queries grouped by KV head: [K, kv, group * S, D], rows ordered (g, s)
            q = qk[:, :, :nh].reshape(K, S, n_kv, group, D).permute(0, 2, 3, 1, 4).reshape(K, n_kv, group * S, D)
            shared_scores = torch.matmul(q, self.kv[i, 0, :, :shared].transpose(-1, -2).unsqueeze(0))  # [K,kv,GS,P]
            own_scores = torch.matmul(q, own[i, 0, :, :, :end].transpose(-1, -2))  # [K, kv, GS, end]
            own_scores = own_scores.masked_fill(~own_allowed.repeat(group, 1), float("-inf"))
            probs = torch.softmax(torch.cat([shared_scores, own_scores], dim=-1).float() * scale, dim=-1)
            probs = probs.to(self.dtype)
            att = torch.matmul(probs[..., :shared], self.kv[i, 1, :, :shared].unsqueeze(0)) \
                + torch.matmul(probs[..., shared:], own[i, 1, :, :, :end])  # [K, kv, GS, D]
            att = att.view(K, n_kv, group, S, D).permute(0, 3, 1, 2, 4).reshape(K * S, nh * D)
            x = x + mm(att, w["wo"], "wo")
            gate, up = mm(self._rms(x, w["post_norm"]), w["wgu"], "wgu").chunk(2, dim=-1)
            x = x + mm(F.silu(gate) * up, w["wdown"], "wdown")
        return mm(self._rms(x, self.final_norm), self.lm_head_t, "lm_head").float().view(K, S, -1)
