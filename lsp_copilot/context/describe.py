"""What `lsp-copilot context FILE:LINE:COL` prints: each part with its source and token count, as JSON or text."""

from __future__ import annotations

from typing import Any

from lsp_copilot.context.builder import CompletionContext


def describe_context(ctx: CompletionContext) -> dict[str, Any]:
    """A JSON-ready description of a context (the CLI adds the rendered prompt under "prompt")."""
    return {
        "path": ctx.path,
        "language": ctx.language,
        "offset": ctx.offset,
        "multiline": ctx.multiline,
        "indent": ctx.indent,
        "scope": {"kind": ctx.scope_kind, "name": ctx.scope_name},
        "budget_tokens": ctx.budget_tokens,
        "prefix": {"tokens": ctx.prefix_tokens, "lines": ctx.prefix.count("\n") + 1, "text": ctx.prefix},
        "suffix": {"tokens": ctx.suffix_tokens, "lines": ctx.suffix.count("\n") + 1 if ctx.suffix else 0,
                   "text": ctx.suffix},
        "parts": [{"kind": p.kind, "source": p.path, "tokens": p.tokens, "text": p.text} for p in ctx.parts],
        "total_tokens": ctx.prefix_tokens + ctx.suffix_tokens + ctx.parts_tokens,
        "notes": list(ctx.notes),
        # after `module.`: the names the answer starts by finishing (completion.guardMembers) and the file's uses
        "members": {"typed": ctx.member_typed, "names": list(ctx.members), "uses": dict(ctx.member_uses)}
        if ctx.members else None,
    }


def format_context(ctx: CompletionContext, show_text: bool = True) -> str:
    """A human-readable report of a context (see format_description)."""
    return format_description(describe_context(ctx), show_text)


def format_description(d: dict[str, Any], show_text: bool = True) -> str:
    """A human-readable report of `describe_context`'s dict: summary, each part with source and tokens, windows."""
    scope = f"{d['scope']['kind']} {d['scope']['name'] or ''}".strip() if d["scope"]["kind"] else "top level"
    out = [
        f"{d['path']} ({d['language'] or 'plain text'}) at offset {d['offset']}: "
        f"{'multi-line' if d['multiline'] else 'single-line'}, scope: {scope}, indent: {d['indent']!r}",
        f"tokens: {d['total_tokens']} of {d['budget_tokens']} (prefix {d['prefix']['tokens']}, "
        f"suffix {d['suffix']['tokens']}, parts {sum(p['tokens'] for p in d['parts'])})",
    ]
    out += [f"note: {note}" for note in d["notes"]]
    if d.get("members"):
        members = d["members"]
        uses = ", ".join(f"{n} x{c}" for n, c in sorted(members["uses"].items(), key=lambda kv: -kv[1]))
        out.append(f"member: the answer finishes one of {len(members['names'])} names after {members['typed']!r} "
                   f"(completion.guardMembers); the file writes here: {uses or 'none of them'}")
    for i, part in enumerate(d["parts"], start=1):
        out.append(f"--- part {i}: {part['kind']} from {part['source']} ({part['tokens']} tokens)")
        if show_text:
            out.append(part["text"])
    for name in ("prefix", "suffix"):
        out.append(f"--- {name}: {d[name]['lines']} lines, {d[name]['tokens']} tokens")
        if show_text:
            out.append(d[name]["text"])
    return "\n".join(out)
