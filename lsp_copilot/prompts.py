"""Prompt templates: one TOML file per model family, family detection from the tokenizer, start-up checks, rendering."""

from __future__ import annotations

import dataclasses
import re
import string
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from lsp_copilot.context import CompletionContext, ContextPart

TEMPLATE_PACKAGE = "lsp_copilot.prompt_templates"  # where `prompts/*.toml` land in an installed wheel
SOURCE_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "prompts"  # the same files in a source checkout

MODES = ("fim", "chat")
CROSSFILE_STYLES = ("header", "comment", "none")
_TOKEN_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_FAMILY_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")
# Placeholders each format string may use, besides the template's own token names (upper case).
FIM_FIELDS = frozenset({"context", "prefix", "suffix", "path"})
PART_FIELDS = frozenset({"path", "text", "path_comment", "language"})
CURRENT_FIELDS = frozenset({"path", "path_comment", "language"})
REPO_FIELDS = frozenset({"repo"})
CHAT_USER_FIELDS = frozenset({"context", "prefix", "suffix", "hole", "path", "language"})
CHAT_SYSTEM_FIELDS = frozenset({"language", "hole"})
# Comment-style cross-file parts: a header line naming the file, then the code itself.
DEFAULT_COMMENT_PART = "{path_comment}\n{text}"
DEFAULT_COMMENT_CURRENT = "{path_comment}\n"
DEFAULT_REPO = "workspace"  # `{repo}` when the caller names none


class TemplateError(ValueError):
    """A template file is malformed, or no template fits the model (the message says why and what to set)."""


ChatFormatter = Callable[[list[dict[str, str]]], str]


@dataclass(frozen=True)
class Segments:
    """A format string parsed once: literal text alternating with placeholder names (`{{`/`}}` are literal braces)."""

    source: str
    pieces: tuple[tuple[str, str | None], ...]  # (literal, field name or None)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name in self.pieces if name is not None)

    def render(self, values: Mapping[str, str]) -> str:
        """Substitute by name; values are inserted verbatim (never re-parsed, so code with braces is safe)."""
        out: list[str] = []
        for literal, name in self.pieces:
            out.append(literal)
            if name is not None:
                out.append(values[name])
        return "".join(out)


def parse_format(source: str, allowed: frozenset[str], tokens: Mapping[str, str], where: str) -> Segments:
    """Parse `source`; every placeholder must be in `allowed` or a token name. Raises TemplateError otherwise."""
    try:
        parsed = list(string.Formatter().parse(source))
    except ValueError as err:
        raise TemplateError(f"{where}: malformed format string {source!r}: {err}") from None
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (spec or conversion):
            raise TemplateError(f"{where}: placeholder {{{name}}} may not carry a format spec or conversion")
        if name is not None and name not in allowed and name not in tokens:
            known = sorted(allowed) + sorted(tokens)
            raise TemplateError(f"{where}: unknown placeholder {{{name}}}; known: {', '.join(known)}")
        pieces.append((literal, name))
    return Segments(source, tuple(pieces))


@dataclass(frozen=True)
class DetectRules:
    """When a template fits a model. Every token of the template is required unless listed in `optional`."""

    optional: tuple[str, ...] = ()  # token names the tokenizer may lack (their feature falls back)
    absent: tuple[str, ...] = ()  # spellings whose presence rules the family out
    model_types: tuple[str, ...] = ()  # config.model_type values
    name_patterns: tuple[str, ...] = ()  # regexes searched in the model's name or path (case-insensitive)
    chat_template: bool = False  # the tokenizer must carry a chat template
    priority: int = 10  # among fitting templates the highest priority wins, then the most required tokens

    @property
    def has_identity(self) -> bool:
        """True when the family also needs a model_type or name match (either one suffices)."""
        return bool(self.model_types or self.name_patterns)


@dataclass(frozen=True)
class CrossFileFormat:
    """How cross-file context parts and the current file's header are rendered into `{context}`."""

    style: str = "none"  # "header": the family's file header tokens; "comment": a path comment; "none": dropped
    part: str = ""  # one part: {path} {text} {path_comment} {language} and token names
    current: str = ""  # the current file's header after the parts
    repo: str = ""  # once before the parts: {repo}
    current_always: bool = False  # emit the current header even without parts (as the model was trained)
    fallback: str = "comment"  # style used when an optional token it needs is missing from the tokenizer


@dataclass(frozen=True)
class ChatFormat:
    """Chat mode: ask an instruction model for the missing middle, then pull it out of the answer."""

    system: str = ""
    user: str = ""  # {context} {prefix} {hole} {suffix} {path} {language}
    part: str = ""  # one cross-file part inside the user message: {path} {text} {language}
    hole: str = "<FILL_HERE>"
    answer_after: tuple[str, ...] = ()  # markers that start the final answer (last occurrence wins)
    markers: tuple[str, str] | None = None  # the answer sits between these, when the model uses them
    template_kwargs: tuple[tuple[str, Any], ...] = ()  # extra arguments for apply_chat_template


@dataclass
class PromptTemplate:
    """One model family's prompt layout, loaded from `prompts/<family>.toml`."""

    family: str
    description: str
    mode: str  # "fim" | "chat"
    tokens: dict[str, str]  # name (upper case, used as {NAME}) -> the exact special-token spelling
    format: str  # the whole FIM prompt: {context} {prefix} {suffix} {path} and token names
    prefix_first: bool  # PSM (prefix before suffix) or SPM
    stop: list[str]  # strings that end a completion (EOT, FIM sentinels)
    detect: DetectRules = field(default_factory=DetectRules)
    crossfile: CrossFileFormat = field(default_factory=CrossFileFormat)
    chat: ChatFormat | None = None
    syntax_stop: bool = True  # whether StopPolicy may cut the raw generation (not for chat answers)
    # whether the model may answer with nothing (end of text first). A model that knows its FIM format only says so
    # where nothing belongs; a small one also says it where it lost track of the ordering (the embedded models).
    allow_empty: bool = True
    source: Path | None = None
    chat_formatter: ChatFormatter | None = field(default=None, compare=False, repr=False)  # bound by resolve_template

    @property
    def used_tokens(self) -> list[str]:
        """Names of the tokens the active format strings use, in a stable order."""
        used: set[str] = set()
        texts = [self.format]
        if self.crossfile.style != "none":
            texts += [self.crossfile.part, self.crossfile.current, self.crossfile.repo]
        for text in texts:
            used |= parse_format(text, _ANY_FIELD, self.tokens, self.family).fields & self.tokens.keys()
        return [name for name in self.tokens if name in used]

    @property
    def required_tokens(self) -> list[str]:
        """Spellings a tokenizer must have for this family to be detected."""
        return [spelling for name, spelling in self.tokens.items() if name not in self.detect.optional]


class _AnyField(frozenset[str]):
    """A field set that admits every name (used to list a validated template's placeholders)."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY_FIELD = _AnyField()


# ----------------------------------------------------------------------------------------------------------- loading


def builtin_template_dir() -> Path:
    """The directory of the shipped templates: the installed package data, else `prompts/` of the source tree."""
    try:
        from importlib.resources import files

        root = files(TEMPLATE_PACKAGE)
        candidate = Path(str(root))
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    except (ModuleNotFoundError, TypeError):
        pass
    return SOURCE_TEMPLATE_DIR


def load_templates(extra_dirs: Iterable[Path] = (), errors: list[str] | None = None) -> dict[str, PromptTemplate]:
    """Family -> template: the built-in files, then each of `extra_dirs` in order (a later file of a family wins).

    Raises TemplateError on a malformed file or a missing directory; when `errors` is a list, each problem is appended
    there instead and the rest still load (a broken user file never takes the built-ins down).
    """
    templates: dict[str, PromptTemplate] = {}
    for directory in [builtin_template_dir(), *(Path(d).expanduser() for d in extra_dirs)]:
        try:
            if not directory.is_dir():
                raise TemplateError(f"prompt template directory {directory} does not exist")
            for path in sorted(directory.glob("*.toml")):
                try:
                    template = load_template_file(path)
                except TemplateError as err:
                    if errors is None:
                        raise
                    errors.append(str(err))
                    continue
                templates[template.family] = template
        except TemplateError as err:
            if errors is None:
                raise
            errors.append(str(err))
    return templates


def load_template_file(path: Path) -> PromptTemplate:
    """Parse and validate one `<family>.toml`. Raises TemplateError naming the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise TemplateError(f"{path}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise TemplateError(f"{path}: invalid TOML: {err}") from None
    return template_from_dict(data, path)


def template_from_dict(data: Mapping[str, Any], path: Path) -> PromptTemplate:
    """Build a PromptTemplate from parsed TOML, checking keys, types and placeholders."""
    where = str(path)
    reader = _Reader(data, where)
    family = reader.text("family", path.stem)
    if family != path.stem:
        raise TemplateError(f"{where}: family {family!r} must match the file name ({path.stem}.toml)")
    if not _FAMILY_NAME.match(family):
        raise TemplateError(f"{where}: family {family!r} must be lower-case letters, digits, '.', '_' or '-'")
    mode = reader.choice("mode", MODES, "fim")
    tokens = reader.str_table("tokens")
    for name, spelling in tokens.items():
        if not _TOKEN_NAME.match(name):
            raise TemplateError(f"{where}: token name {name!r} must be upper case (it is used as {{{name}}})")
        if not spelling:
            raise TemplateError(f"{where}: token {name} has an empty spelling")
    detect = _read_detect(reader.table("detect"), tokens, f"{where} [detect]")
    crossfile = _read_crossfile(reader.table("crossfile"), tokens, f"{where} [crossfile]")
    chat = _read_chat(reader.table("chat"), f"{where} [chat]") if mode == "chat" else None
    fmt = reader.text("format", "")
    prefix_first = reader.flag("prefix_first", True)
    if mode == "fim":
        segments = parse_format(fmt, FIM_FIELDS, tokens, f"{where} format")
        order = [name for _, name in segments.pieces if name in ("prefix", "suffix")]
        if sorted(order) != ["prefix", "suffix"]:
            raise TemplateError(f"{where}: format must contain {{prefix}} and {{suffix}} exactly once each")
        if (order[0] == "prefix") != prefix_first:
            raise TemplateError(f"{where}: prefix_first = {str(prefix_first).lower()} contradicts the format order")
        if crossfile.style != "none" and "context" not in segments.fields:
            raise TemplateError(f"{where}: crossfile style {crossfile.style!r} needs {{context}} in the format")
    elif chat is None:  # pragma: no cover - _read_chat always returns one for chat mode
        raise TemplateError(f"{where}: mode = \"chat\" needs a [chat] table")
    template = PromptTemplate(
        family=family,
        description=reader.text("description", ""),
        mode=mode,
        tokens=tokens,
        format=fmt,
        prefix_first=prefix_first,
        stop=reader.str_list("stop"),
        detect=detect,
        crossfile=crossfile,
        chat=chat,
        syntax_stop=reader.flag("syntax_stop", mode == "fim"),
        allow_empty=reader.flag("allow_empty", True),
        source=path,
    )
    reader.reject_unknown({"family", "description", "mode", "tokens", "format", "prefix_first", "stop", "detect",
                           "crossfile", "chat", "syntax_stop", "allow_empty"})
    return template


def _read_detect(data: Mapping[str, Any], tokens: Mapping[str, str], where: str) -> DetectRules:
    reader = _Reader(data, where)
    optional = tuple(reader.str_list("optional"))
    for name in optional:
        if name not in tokens:
            raise TemplateError(f"{where}: optional token {name!r} is not in [tokens]")
    patterns = tuple(reader.str_list("name_patterns"))
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise TemplateError(f"{where}: bad name pattern {pattern!r}: {err}") from None
    rules = DetectRules(
        optional=optional,
        absent=tuple(reader.str_list("absent")),
        model_types=tuple(reader.str_list("model_types")),
        name_patterns=patterns,
        chat_template=reader.flag("chat_template", False),
        priority=reader.integer("priority", 10),
    )
    reader.reject_unknown({"optional", "absent", "model_types", "name_patterns", "chat_template", "priority"})
    return rules


def _read_crossfile(data: Mapping[str, Any], tokens: Mapping[str, str], where: str) -> CrossFileFormat:
    reader = _Reader(data, where)
    style = reader.choice("style", CROSSFILE_STYLES, "none")
    default_part = DEFAULT_COMMENT_PART if style == "comment" else ""
    default_current = DEFAULT_COMMENT_CURRENT if style == "comment" else ""
    cross = CrossFileFormat(
        style=style,
        part=reader.text("part", default_part),
        current=reader.text("current", default_current),
        repo=reader.text("repo", ""),
        current_always=reader.flag("current_always", False),
        fallback=reader.choice("fallback", ("comment", "none"), "comment"),
    )
    reader.reject_unknown({"style", "part", "current", "repo", "current_always", "fallback"})
    if style == "header" and not cross.part:
        raise TemplateError(f"{where}: style = \"header\" needs a `part` format")
    parse_format(cross.part, PART_FIELDS, tokens, f"{where} part")
    parse_format(cross.current, CURRENT_FIELDS, tokens, f"{where} current")
    parse_format(cross.repo, REPO_FIELDS, tokens, f"{where} repo")
    return cross


def _read_chat(data: Mapping[str, Any], where: str) -> ChatFormat:
    reader = _Reader(data, where)
    markers = reader.str_list("markers")
    if markers and len(markers) != 2:
        raise TemplateError(f"{where}: markers must be [start, end]")
    kwargs = reader.table("template_kwargs")
    chat = ChatFormat(
        system=reader.text("system", ""),
        user=reader.text("user", ""),
        part=reader.text("part", "{path}:\n{text}\n"),
        hole=reader.text("hole", "<FILL_HERE>"),
        answer_after=tuple(reader.str_list("answer_after")),
        markers=(markers[0], markers[1]) if markers else None,
        template_kwargs=tuple(sorted(kwargs.items())),
    )
    reader.reject_unknown({"system", "user", "part", "hole", "answer_after", "markers", "template_kwargs"})
    if not chat.user:
        raise TemplateError(f"{where}: mode = \"chat\" needs a [chat] table with a `user` message")
    parse_format(chat.system, CHAT_SYSTEM_FIELDS, {}, f"{where} system")
    user = parse_format(chat.user, CHAT_USER_FIELDS, {}, f"{where} user")
    parse_format(chat.part, PART_FIELDS, {}, f"{where} part")
    if not {"prefix", "suffix", "hole"} <= user.fields:
        raise TemplateError(f"{where}: user must contain {{prefix}}, {{hole}} and {{suffix}}")
    return chat


class _Reader:
    """Typed access to one TOML table with errors that name the file, the key and the expected type."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        if not isinstance(data, Mapping):
            raise TemplateError(f"{where}: expected a table")
        self.data, self.where = data, where

    def _get(self, key: str, kind: type | tuple[type, ...], default: Any, what: str) -> Any:
        value = self.data.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TemplateError(f"{self.where}: `{key}` must be {what}, got {value!r}")
        return value

    def text(self, key: str, default: str) -> str:
        return str(self._get(key, str, default, "a string"))

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._get(key, bool, default, "true or false"))

    def integer(self, key: str, default: int) -> int:
        return int(self._get(key, int, default, "an integer"))

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise TemplateError(f"{self.where}: `{key}` must be one of {', '.join(choices)}, got {value!r}")
        return value

    def str_list(self, key: str) -> list[str]:
        value = self._get(key, list, [], "a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise TemplateError(f"{self.where}: `{key}` must be a list of strings, got {value!r}")
        return list(value)

    def table(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, dict, {}, "a table"))

    def str_table(self, key: str) -> dict[str, str]:
        table = self.table(key)
        for name, value in table.items():
            if not isinstance(value, str):
                raise TemplateError(f"{self.where}: [{key}] {name} must be a string, got {value!r}")
        return table

    def reject_unknown(self, known: set[str]) -> None:
        unknown = sorted(set(self.data) - known)
        if unknown:
            raise TemplateError(f"{self.where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


# --------------------------------------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class ModelFacts:
    """What detection looks at: the vocabulary (with added tokens), the chat template, model_type and names."""

    vocab: Mapping[str, int]
    has_chat_template: bool
    model_type: str
    names: tuple[str, ...]


def model_facts(tokenizer: Any, model_config: Any) -> ModelFacts:
    """Read a transformers tokenizer (or a `tokenizers.Tokenizer`) and a config (object, dict or None)."""
    vocab = tokenizer.get_vocab()
    config = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config or {})
    names = [str(getattr(tokenizer, "name_or_path", "") or ""), str(config.get("_name_or_path", "") or ""),
             str(getattr(model_config, "name_or_path", "") or "")]
    names += [str(a) for a in config.get("architectures") or []]
    return ModelFacts(
        vocab=vocab,
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        model_type=str(config.get("model_type", "") or ""),
        names=tuple(n for n in names if n),
    )


def template_fits(template: PromptTemplate, facts: ModelFacts) -> bool:
    """All required tokens present, no excluded token present, identity (model_type or name) matched when asked."""
    rules = template.detect
    if rules.chat_template and not facts.has_chat_template:
        return False
    if any(spelling not in facts.vocab for spelling in template.required_tokens):
        return False
    if any(spelling in facts.vocab for spelling in rules.absent):
        return False
    if rules.has_identity:
        by_type = facts.model_type in rules.model_types
        by_name = any(re.search(p, n, re.IGNORECASE) for p in rules.name_patterns for n in facts.names)
        return by_type or by_name
    return True


def detect_template(
    tokenizer: Any, model_config: Any, templates: Mapping[str, PromptTemplate], override: str | None = None
) -> PromptTemplate:
    """The template for this model, checked against its tokenizer and bound to it (see `resolve_template`).

    `override` (the `model.template` setting) names a family and skips detection. Without it, among the templates
    that fit (`template_fits`), the highest `detect.priority` wins, then the one requiring the most tokens.
    Raises TemplateError saying which tokens were looked for and what to set when nothing fits.
    """
    if override:
        if override not in templates:
            raise TemplateError(f"model.template = {override!r} is not a known family; known: {_families(templates)}")
        return resolve_template(templates[override], tokenizer)
    facts = model_facts(tokenizer, model_config)
    fitting = [t for t in templates.values() if template_fits(t, facts)]
    if not fitting:
        raise TemplateError(_no_fit_message(templates, facts))
    best = max(fitting, key=lambda t: (t.detect.priority, t.detect.has_identity, len(t.required_tokens), t.family))
    return resolve_template(best, tokenizer)


def _families(templates: Mapping[str, PromptTemplate]) -> str:
    return ", ".join(sorted(templates))


def _no_fit_message(templates: Mapping[str, PromptTemplate], facts: ModelFacts) -> str:
    looked = "; ".join(
        f"{t.family}: " + (" ".join(t.required_tokens) if t.required_tokens else "a chat template")
        for t in sorted(templates.values(), key=lambda t: t.family)
    )
    name = facts.names[0] if facts.names else "the model"
    return (
        f"no prompt template fits {name} (model_type {facts.model_type or '?'}): its tokenizer has no "
        f"fill-in-the-middle tokens of a known family and no chat template. Looked for {looked}. "
        f"Set `model.template = \"<family>\"` in the settings to one of: {_families(templates)}; "
        f"or add prompts/<family>.toml (or a file in a `prompts.paths` directory) describing this model's tokens."
    )


def sentinel_problem(spelling: str, tokenizer: Any, vocab: Mapping[str, int] | None = None) -> str | None:
    """Why `spelling` is not a usable single special token of `tokenizer`, or None when it is.
    `vocab`: the tokenizer's get_vocab(), when the caller has it already (building it is slow for large ones)."""
    vocab = tokenizer.get_vocab() if vocab is None else vocab
    if spelling not in vocab:
        return f"{spelling!r} is not in the vocabulary"
    encoded = tokenizer.encode(spelling, add_special_tokens=False)
    ids = list(getattr(encoded, "ids", encoded))
    # A sentencepiece tokenizer may put a dummy-prefix piece before the token: tolerate one extra id.
    if vocab[spelling] not in ids or len(ids) > 2:
        return f"{spelling!r} is in the vocabulary but the text encodes to {len(ids)} tokens (not an added token)"
    return None


def check_template(template: PromptTemplate, tokenizer: Any) -> None:
    """Start-up check: every sentinel the active formats use is a single token; chat mode needs a chat template."""
    if template.mode == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise TemplateError(
                f"template {template.family!r} (chat mode) needs a tokenizer with a chat template; this one has none. "
                "Set `model.template` to a fill-in-the-middle family that matches the model's tokens."
            )
        return
    vocab = tokenizer.get_vocab()
    problems = [p for name in template.used_tokens
                if (p := sentinel_problem(template.tokens[name], tokenizer, vocab))]
    if problems:
        raise TemplateError(
            f"template {template.family!r} does not fit this tokenizer: " + "; ".join(problems)
            + ". Set `model.template` to the model's family, or add prompts/<family>.toml with its spellings."
        )


def resolve_template(template: PromptTemplate, tokenizer: Any) -> PromptTemplate:
    """A copy fitted to `tokenizer`: missing optional tokens switch cross-file rendering to its fallback, chat mode
    gets the tokenizer's chat template bound; then `check_template`. Raises TemplateError."""
    vocab = tokenizer.get_vocab()
    missing = [n for n in template.detect.optional
               if sentinel_problem(template.tokens[n], tokenizer, vocab) is not None]
    cross = template.crossfile
    needs = parse_format(cross.part + cross.current + cross.repo, _ANY_FIELD, template.tokens, template.family).fields
    if cross.style == "header" and any(name in needs for name in missing):
        comment = cross.fallback == "comment"
        cross = CrossFileFormat(style=cross.fallback, part=DEFAULT_COMMENT_PART if comment else "",
                                current=DEFAULT_COMMENT_CURRENT if comment else "")
    resolved = dataclasses.replace(template, crossfile=cross)
    if template.mode == "chat" and template.chat is not None:
        kwargs = dict(template.chat.template_kwargs)

        def format_chat(messages: list[dict[str, str]]) -> str:
            return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs))

        resolved.chat_formatter = format_chat
    check_template(resolved, tokenizer)
    return resolved


def stop_token_ids(template: PromptTemplate, tokenizer: Any) -> list[int]:
    """Ids of the stop strings that are single tokens (for the decode loop to stop on ids, not only on text)."""
    vocab = tokenizer.get_vocab()
    return [vocab[s] for s in template.stop if sentinel_problem(s, tokenizer, vocab) is None]


# --------------------------------------------------------------------------------------------------------- rendering


def path_comment(path: str, language: str | None) -> str:
    """`# path` in the file's line-comment syntax (from the language, else the extension, else `#`)."""
    from lsp_copilot.languages import comment_prefix, detect_language

    prefix = comment_prefix(language) or comment_prefix(detect_language(path=PurePosixPath(path))) or "#"
    return f"{prefix} {path}"


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


END_TOKEN_NAMES = frozenset({"EOT", "EOS"})  # template token names that end an answer rather than mark a part


def banned_tokens(template: PromptTemplate) -> list[str]:
    """Special tokens a FIM answer never contains (sentinels, file separators): the engine never chooses them.

    Small models put a FIM sentinel where a split was frequent in training (e.g. `<fim_suffix>` after an indented
    line start); masking it lets them answer instead of stopping. Chat templates ban nothing.
    """
    if template.mode != "fim":
        return []
    return [spelling for name, spelling in template.tokens.items() if name not in END_TOKEN_NAMES]


def render_context(template: PromptTemplate, ctx: CompletionContext, repo: str | None = None) -> str:
    """The `{context}` block: optional repository line, each cross-file part, then the current file's header."""
    cross = template.crossfile
    if cross.style == "none":
        return ""
    parts = list(ctx.parts)
    out: list[str] = []
    tokens = template.tokens
    if parts:
        if cross.repo:
            out.append(_render(cross.repo, {"repo": repo or DEFAULT_REPO}, tokens))
        for part in parts:
            out.append(_render(cross.part, _part_values(part, ctx.language), tokens))
    if (parts or cross.current_always) and ctx.path and cross.current:
        values = {"path": ctx.path, "path_comment": path_comment(ctx.path, ctx.language),
                  "language": ctx.language or ""}
        out.append(_render(cross.current, values, tokens))
    return "".join(out)


def _part_values(part: ContextPart, language: str | None) -> dict[str, str]:
    return {"path": part.path, "text": _with_newline(part.text), "path_comment": path_comment(part.path, language),
            "language": language or ""}


def _render(fmt: str, values: Mapping[str, str], tokens: Mapping[str, str]) -> str:
    segments = parse_format(fmt, _ANY_FIELD, tokens, fmt)
    return segments.render({**tokens, **values})


def render_prompt(template: PromptTemplate, ctx: CompletionContext, repo: str | None = None) -> str:
    """The prompt text for `ctx` (tokenize it with the tokenizer's own special-token handling, BOS included).

    FIM families substitute the template's format; chat families build a system + user message and apply the
    tokenizer's chat template (bound by `resolve_template`/`detect_template`). `repo` names the repository for
    families with a repository-level format (default "workspace").
    """
    if template.mode == "chat":
        return _render_chat(template, ctx)
    values = {"context": render_context(template, ctx, repo), "prefix": ctx.prefix, "suffix": ctx.suffix,
              "path": ctx.path}
    return _render(template.format, values, template.tokens)


def chat_messages(template: PromptTemplate, ctx: CompletionContext) -> list[dict[str, str]]:
    """The system and user messages that ask for the missing middle."""
    chat = template.chat
    if chat is None:
        raise TemplateError(f"template {template.family!r} has no [chat] table")
    language = ctx.language or "text"
    context = "".join(_render(chat.part, _part_values(p, ctx.language), {}) for p in ctx.parts)
    # The suffix's trailing newlines go: the user format closes its code fence on the next line itself.
    user = _render(chat.user, {"context": context, "prefix": ctx.prefix, "suffix": ctx.suffix.rstrip("\n"),
                               "hole": chat.hole,
                               "path": ctx.path, "language": language}, {})
    messages = [{"role": "user", "content": user}]
    if chat.system:
        messages.insert(0, {"role": "system", "content": _render(chat.system, {"language": language,
                                                                               "hole": chat.hole}, {})})
    return messages


def _render_chat(template: PromptTemplate, ctx: CompletionContext) -> str:
    if template.chat_formatter is None:
        raise TemplateError(f"template {template.family!r} is a chat template: bind it to the tokenizer with "
                            "resolve_template() (detect_template does) before rendering")
    return template.chat_formatter(chat_messages(template, ctx))


# -------------------------------------------------------------------------------------------------------- extraction

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n`]*\n", re.MULTILINE)


def extract_middle(template: PromptTemplate, generated: str, ctx: CompletionContext | None = None) -> str:
    """The completion proper. FIM: the text before the first stop string. Chat: the answer after the last
    `answer_after` marker, between `markers` if present, else inside the last code fence, with the hole marker and
    any echo of the text around the cursor (when `ctx` is given) removed."""
    if template.mode != "chat" or template.chat is None:
        return cut_at_stop(generated, template.stop)
    chat = template.chat
    answer = generated
    for marker in chat.answer_after:
        at = answer.rfind(marker)
        if at >= 0:
            answer = answer[at + len(marker):]
    answer = cut_at_stop(answer, template.stop)
    if chat.markers and chat.markers[0] in answer:
        start = answer.rfind(chat.markers[0]) + len(chat.markers[0])
        end = answer.find(chat.markers[1], start)
        answer = answer[start:] if end < 0 else answer[start:end]
    else:
        answer = last_fenced_block(answer)
    answer = answer.replace(chat.hole, "")
    return strip_echo(answer, ctx) if ctx is not None else answer


def cut_at_stop(text: str, stops: Iterable[str]) -> str:
    """`text` up to the earliest occurrence of any stop string."""
    cut = len(text)
    for stop in stops:
        at = text.find(stop) if stop else -1
        if 0 <= at < cut:
            cut = at
    return text[:cut]


def last_fenced_block(answer: str) -> str:
    """The body of the last ``` fenced block (an unclosed last fence runs to the end); no fence: the stripped answer."""
    opens = list(_FENCE.finditer(answer))
    if not opens:
        return answer.strip("\n")
    # Fences pair up in order: opener, closer, opener, ... The last opener is an even-indexed match.
    pairs: list[tuple[int, int]] = []
    i = 0
    while i < len(opens):
        start = opens[i].end()
        fence = opens[i].group(1)
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE).search(answer, start)
        end = close.start() if close else len(answer)
        pairs.append((start, end))
        while i < len(opens) and opens[i].start() < (close.end() if close else len(answer)):
            i += 1
    start, end = pairs[-1]
    body = answer[start:end]
    return body[:-1] if body.endswith("\n") else body


def strip_echo(answer: str, ctx: CompletionContext, lookback_lines: int = 20) -> str:
    """Remove a repeat of the text before the cursor (the longest tail of its last lines, indentation aside) from the
    start of a chat answer, and a repeat of the rest of the cursor line from its end."""
    prefix = ctx.prefix
    starts = [0] + [i + 1 for i, ch in enumerate(prefix) if ch == "\n"]
    for j in starts[-lookback_lines:]:  # earliest first: the longest echo wins
        tail = prefix[j:]
        if not tail.strip():
            continue
        if answer.startswith(tail):
            answer = answer[len(tail):]
            break
        loose = tail.lstrip()
        if answer.lstrip().startswith(loose):
            answer = answer.lstrip()[len(loose):]
            break
    else:
        line_prefix = prefix[starts[-1]:]
        if line_prefix and not line_prefix.strip() and answer.startswith(line_prefix):
            answer = answer[len(line_prefix):]  # re-indented: the cursor already sits after the indentation
    suffix_line = ctx.suffix.split("\n", 1)[0].strip()
    if suffix_line and answer.rstrip().endswith(suffix_line):
        answer = answer.rstrip()[: -len(suffix_line)]
    return answer
