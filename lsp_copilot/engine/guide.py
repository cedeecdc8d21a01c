"""Name-guided decoding: after `module.`, the answer first finishes a name the module binds, token by token."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

_IDENTIFIER_HEAD = re.compile(r"[\w$]*")  # the identifier characters a token's text starts with (Unicode, JS `$`)


class VocabIndex:
    """What the guide needs of a tokenizer, built once per engine: each token's text, the tokens that end an
    identifier (their text starts with another character: `(`, ` x`, `\n`), and each name's own spelling in tokens."""

    def __init__(self, tokenizer: Any, never: Iterable[int] = ()) -> None:
        excluded = set(never)
        self._tokenizer = tokenizer
        self.texts: list[str] = [tokenizer.decode([i]) for i in range(len(tokenizer))]
        self.enders = [i for i, text in enumerate(self.texts)
                       if text and i not in excluded and not identifier_head(text)]  # ascending
        self._is_ender: dict[torch.device, Tensor] = {}  # [V] bool, one copy per device (`is_ender`)
        self._spellings: dict[str, tuple[int, ...]] = {}

    def is_ender(self, device: torch.device) -> Tensor:
        """[V] bool: which tokens end an identifier, on `device` (copied there once, not per pick)."""
        if device not in self._is_ender:
            mask = torch.zeros(len(self.texts), dtype=torch.bool)
            mask[self.enders] = True
            self._is_ender[device] = mask.to(device)
        return self._is_ender[device]

    def spell(self, text: str) -> tuple[int, ...]:
        """The tokens the tokenizer writes `text` with (cached): the spelling the model saw in training, so a guided
        name never comes out in pieces it never read (`N`,`ot`,`F`... instead of `Not`,`Found`)."""
        if text not in self._spellings:
            if len(self._spellings) >= 65536:
                self._spellings.clear()
            self._spellings[text] = tuple(self._tokenizer.encode(text, add_special_tokens=False))
        return self._spellings[text]


def identifier_head(text: str) -> str:
    """The identifier characters `text` starts with ("" for `(` or ` x`)."""
    match = _IDENTIFIER_HEAD.match(text)
    return match.group(0) if match else ""


class NameGuide:
    """One request's rule: the answer starts by finishing one of `names`, of which `typed` is already written.

    Each name's rest is written in its own spelling (`VocabIndex.spell`): a pick is the next token of some names
    still possible, or, where a name is complete, a token that ends the identifier; the rule then lets go. `uses`
    (how often the file already writes each name after the same qualifier, `context.usage`) update the model's
    choice as evidence for a cache model: each pick's group of names gets (p_model(group) + w * uses(group)) /
    (1 + w * all uses), the model's distribution as a Dirichlet prior, one use worth w of it (`usage_weight`;
    Kuhn & De Mori's cache language model, Tu et al. 2014 on the localness of code). At w = 0.1 one earlier use adds
    a tenth of the model's whole probability to its name, a hint a sure model overrides; ten weigh as much as it.
    """

    def __init__(self, vocab: VocabIndex, typed: str, names: Sequence[str], uses: Mapping[str, int] | None = None,
                 usage_weight: float = 0.0) -> None:
        self.vocab = vocab
        self.written = typed
        self.usage_weight = usage_weight
        self.uses = {n: c for n, c in (uses or {}).items() if c > 0} if usage_weight > 0 else {}
        self._paths = {n: vocab.spell(n[len(typed):]) for n in names if n.startswith(typed)}  # the names left
        self._step = 0  # guided tokens taken
        self._groups: dict[int, list[str]] = {}  # `groups()` at the last `allowed()`, for `apply`
        self.active = bool(self._paths)

    def groups(self) -> dict[int, list[str]]:
        """The next token of each name still possible -> those names; -1 -> the names already complete."""
        found: dict[int, list[str]] = {}
        for name, path in self._paths.items():
            found.setdefault(path[self._step] if self._step < len(path) else -1, []).append(name)
        return found

    def allowed(self) -> list[int] | None:
        """The ids the next token may take (ascending), or None when the rule no longer applies."""
        if not self.active:
            return None
        groups = self._groups = self.groups()
        ids = sorted(i for i in groups if i >= 0)  # a name's next token starts with identifier characters:
        if -1 in groups:  # never an ender, so the two lists are disjoint
            ids = sorted(ids + self.vocab.enders)
        return ids or None

    def apply(self, logits: Tensor, ids: list[int]) -> Tensor:
        """Logits [V] for the pick among `ids` (the last `allowed()`): -inf elsewhere; where the file uses the names,
        each group's model mass (a name's next token, or all enders for the complete names) is moved to
        (mass + w * uses) / (1 + w * all uses), the tokens of a group keeping their ratios."""
        index = torch.tensor(ids, device=logits.device)
        kept = logits[index].float()  # [n]
        counts = {token: sum(self.uses.get(n, 0) for n in names) for token, names in self._groups.items()}
        total = sum(counts.values())
        if total > 0:  # in log space: a group's mass may be far below float precision
            logp = torch.log_softmax(kept, dim=-1)  # [n], the model's choice among the allowed tokens
            is_ender = self.vocab.is_ender(logits.device)[index]  # [n]
            group_uses = torch.where(is_ender, float(counts.get(-1, 0)), 0.0)  # [n]
            for token, count in counts.items():  # the names' next tokens (few), each a group of its own
                if token >= 0:
                    group_uses[bisect.bisect_left(ids, token)] = float(count)
            group_mass = torch.where(is_ender, torch.logsumexp(logp[is_ender], dim=0), logp)  # [n], log
            w = self.usage_weight
            updated = torch.logaddexp(group_mass, torch.log(w * group_uses)) - math.log1p(w * total)
            kept = logp - group_mass + updated  # the token's share of its group, times the group's new mass
        out = torch.full_like(logits, float("-inf"))
        out[index] = kept.to(out.dtype)
        return out

    def push(self, token: int) -> None:
        """Account a picked token: a name's next token extends the name; a token that ends it ends the rule."""
        text = self.vocab.texts[token]
        self._paths = {n: p for n, p in self._paths.items() if self._step < len(p) and p[self._step] == token}
        self._step += 1
        self.written += identifier_head(text)
        self.active = bool(self._paths) and identifier_head(text) == text
