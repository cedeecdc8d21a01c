"""Token choice: greedy or temperature/top-p sampling, and verification of drafted tokens (speculative sampling)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Verdict:
    """How many drafted tokens the target accepted, and the token it adds after them (correction or bonus)."""

    accepted: int
    next_token: int


class Sampler:
    """Turns logits into tokens for one request; seeded, so a request with a seed is reproducible."""

    def __init__(self, temperature: float, top_p: float, seed: int | None, device: torch.device,
                 banned: Sequence[int] = ()) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.greedy = temperature == 0.0
        self.banned = sorted(set(banned))  # token ids never chosen
        self.gen = torch.Generator(device="cpu")
        if seed is not None:
            self.gen.manual_seed(seed)
        else:
            self.gen.seed()

    def restrict(self, logits: Tensor) -> Tensor:
        """logits [..., V] with the banned tokens at -inf (a copy; the input is left as it is)."""
        if not self.banned:
            return logits
        out = logits.clone()
        out[..., self.banned] = float("-inf")
        return out

    def probs(self, logits: Tensor) -> Tensor:
        """Sampling distribution [..., V] (fp32): softmax(logits / T) without banned tokens, in the top-p nucleus."""
        p = torch.softmax(self.restrict(logits).float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_p, order = torch.sort(p, dim=-1, descending=True)
            # keep the smallest prefix whose mass reaches top_p (the token crossing the threshold is kept)
            drop = sorted_p.cumsum(-1) - sorted_p >= self.top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            p = torch.zeros_like(p).scatter_(-1, order, sorted_p)
            p = p / p.sum(-1, keepdim=True)
        return p

    def draw(self, p: Tensor) -> int:
        """One token from distribution p [V]."""
        return int(torch.multinomial(p.cpu(), 1, generator=self.gen).item())

    def pick(self, logits: Tensor, also_banned: Sequence[int] = (), only: Sequence[int] | None = None) -> int:
        """The next token from logits [V], never one of `also_banned` and, when `only` is given, one of those (for
        this choice only)."""
        if also_banned or only:
            logits = logits.clone()
        if only:
            keep = logits[..., list(only)].clone()
            logits.fill_(float("-inf"))
            logits[..., list(only)] = keep
        if also_banned:
            logits[..., list(also_banned)] = float("-inf")
        if self.greedy:
            return int(torch.argmax(self.restrict(logits)).item())
        return self.draw(self.probs(logits))

    def verify(self, draft: list[int], draft_probs: Tensor | None, logits: Tensor) -> Verdict:
        """Check draft tokens against target logits [k+1, V] (row i predicts the token after draft[:i]).

        Greedy: accept while the draft equals the target's argmax, then add the argmax (lossless by construction).
        Sampling (Leviathan et al. / Chen et al.): accept x_i with probability min(1, p_i(x_i) / q_i(x_i)); on the
        first rejection draw from norm(max(p_i - q_i, 0)); after k acceptances draw the bonus from p_k. With a
        deterministic draft (lookup, on-screen text) q_i is a point mass. The output then follows p exactly.
        draft_probs: [k, V] draft distributions, or None for point masses.
        """
        k = len(draft)
        if self.greedy:
            target = torch.argmax(self.restrict(logits), dim=-1).tolist()  # [k+1]
            n = 0
            while n < k and target[n] == draft[n]:
                n += 1
            return Verdict(n, int(target[n]))
        p = self.probs(logits)  # [k+1, V]
        for i, x in enumerate(draft):
            q_x = 1.0 if draft_probs is None else float(draft_probs[i, x])
            p_x = float(p[i, x])
            u = float(torch.rand((), generator=self.gen))
            if q_x > 0 and u < min(1.0, p_x / q_x):  # q >= p: accept with p/q; q < p: always accept
                continue
            if draft_probs is None:
                residual = p[i].clone()
                residual[x] = 0.0
            else:
                residual = torch.clamp(p[i] - draft_probs[i].to(p.device), min=0.0)
            total = float(residual.sum())
            if total <= 0.0:  # p == q up to rounding: any draw from p is correct
                residual, total = p[i], 1.0
            return Verdict(i, self.draw(residual / total))
        return Verdict(k, self.draw(p[k]))
