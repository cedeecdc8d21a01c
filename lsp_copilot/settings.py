"""Settings: defaulted dataclasses, loaded once from TOML, initializationOptions or workspace/configuration."""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from lsp_copilot.context.settings import ContextSettings


def _choice(*values: str) -> dict[str, Any]:
    return {"choices": values}


def _range(lo: float, hi: float) -> dict[str, Any]:
    return {"min": lo, "max": hi}


@dataclass
class ModelSettings:
    """Which model runs, where, and with which prompt template."""

    path: str = ""  # empty: the embedded default model
    draft: str = ""  # empty: the embedded draft when the embedded model runs, else no draft model
    device: str = field(default="auto", metadata=_choice("auto", "cpu", "cuda", "mps"))
    template: str = ""  # empty: detected from the tokenizer
    threads: int = field(default=0, metadata=_range(0, 256))  # CPU threads for torch; 0: torch's default


@dataclass
class CompletionSettings:
    """How a suggestion is generated and delivered."""

    max_tokens: int = field(default=128, metadata=_range(1, 4096))
    temperature: float = field(default=0.0, metadata=_range(0.0, 2.0))
    top_p: float = field(default=1.0, metadata=_range(0.01, 1.0))
    time_limit_ms: int = field(default=3000, metadata=_range(10, 60000))
    num_suggestions: int = field(default=1, metadata=_range(1, 1))
    stream_interval_ms: int = field(default=30, metadata=_range(0, 1000))
    wait_for_model_ms: int = field(default=5000, metadata=_range(0, 120000))
    multiline: str = field(default="auto", metadata=_choice("auto", "always", "never"))
    speculation: str = field(default="auto", metadata=_choice("auto", "off", "draft", "lookup", "screen",
                                                              "draft+lookup", "lookup+screen", "draft+lookup+screen"))
    # After `module.` of a workspace module, the answer starts by finishing one of the names that module offers (its
    # definitions, assignments and re-exports; found by the index; Python without star imports, and ES modules), as
    # a static analyser's monitor would keep it (Agrawal et al., 2023, monitor-guided decoding); off: the model
    # alone decides.
    guard_members: bool = True
    # In that choice of name, what one earlier use of a name after the same `module.` in the file weighs against the
    # model's whole preference (the choice follows (p_model + w * uses) / (1 + w * all uses), as an editor's member
    # list ranks by usage); 0: the model alone chooses.
    member_usage_weight: float = field(default=0.1, metadata=_range(0.0, 100.0))
    # Single-line answers considered (greedy only): the greedy one and those that start with the next likeliest first
    # tokens (at most candidate_gap nats less likely than the greedy one), each finished greedily; the one kept scores
    # best under log p(answer | prompt) + rerank_weight * log p(the next rerank_lines lines | the text before +
    # answer), the model reading the file left to right (engine/rerank.py). 1: the greedy answer alone.
    candidates: int = field(default=8, metadata=_range(1, 32))
    candidate_gap: float = field(default=3.0, metadata=_range(0.0, 100.0))
    rerank_weight: float = field(default=0.5, metadata=_range(0.0, 100.0))
    rerank_lines: int = field(default=4, metadata=_range(0, 64))


@dataclass
class PromptSettings:
    """Where extra prompt templates live (each a `<family>.toml`)."""

    paths: list[str] = field(default_factory=list)


@dataclass
class LogSettings:
    """Logging: stderr always; a file when given."""

    level: str = field(default="info", metadata=_choice("debug", "info", "warning", "error"))
    file: str = ""


@dataclass
class Settings:
    """The whole settings tree; every field has a default."""

    enable: bool = True
    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    log: LogSettings = field(default_factory=LogSettings)
    disabled_languages: list[str] = field(default_factory=list)


def snake_case(key: str) -> str:
    """`maxTokens` -> `max_tokens`; snake_case keys pass through."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _coerce(value: Any, kind: Any, meta: typing.Mapping[str, Any], where: str) -> Any:
    """`value` as type `kind`, checked against choices/ranges in `meta`; raises ValueError with a message."""
    origin = typing.get_origin(kind)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where} must be a list of strings, got {value!r}")
        return list(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError(f"{where} must be an integer, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        value = float(value)
    elif kind is str and not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise ValueError(f"{where} must be one of {', '.join(meta['choices'])}; got {value!r}")
    if "min" in meta and not meta["min"] <= value <= meta["max"]:
        raise ValueError(f"{where} must be between {meta['min']} and {meta['max']}; got {value!r}")
    return value


def _apply(obj: Any, data: Any, where: str, problems: list[str]) -> None:
    """Overlay `data` (a mapping with camelCase or snake_case keys) onto dataclass `obj`, collecting problems."""
    if not isinstance(data, dict):
        problems.append(f"{where or 'settings'} must be a table/object, got {data!r}")
        return
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for raw_key, value in data.items():
        key = snake_case(str(raw_key))
        path = f"{where}.{raw_key}" if where else str(raw_key)
        if key not in fields:
            problems.append(f"unknown setting {path} (ignored)")
            continue
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            _apply(getattr(obj, key), value, path, problems)
            continue
        if value is None:
            continue  # a client sending null means "not set"
        try:
            setattr(obj, key, _coerce(value, kind, fields[key].metadata, path))
        except ValueError as exc:
            problems.append(f"invalid setting: {exc}; using the default {getattr(obj, key)!r}")


def build_settings(*layers: Any) -> tuple[Settings, list[str]]:
    """Defaults overlaid by each layer in order (later wins). Returns the settings and human-readable problems."""
    settings = Settings()
    problems: list[str] = []
    for layer in layers:
        if layer:
            _apply(settings, layer, "", problems)
    return settings, problems


def read_toml(path: Path) -> dict[str, Any]:
    """A settings file: the tree itself or a `[lspCopilot]` table. Raises ValueError when unreadable."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read settings file {path}: {exc}") from exc
    return data.get("lspCopilot", data)
