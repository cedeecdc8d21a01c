"""Prompt templates: loading and validation, golden renders per family, published spellings, detection, chat mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from lsp_copilot.context import CompletionContext, ContextPart
from lsp_copilot.prompts import (
    TemplateError,
    builtin_template_dir,
    check_template,
    detect_template,
    extract_middle,
    load_templates,
    render_prompt,
    resolve_template,
    stop_token_ids,
)

FAMILIES = ["chat", "codegemma", "codellama", "codestral", "deepseek-coder", "embedded", "granite", "qwen2.5-coder",
            "starcoder"]

# The spellings each family's published tokenizer uses (written out here, independently of prompts/*.toml).
PUBLISHED = {
    "starcoder": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>", "<file_sep>"],
    "granite": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<|endoftext|>"],
    "embedded": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<|endoftext|>", "<file_sep>"],
    "codellama": ["\u2581<PRE>", "\u2581<SUF>", "\u2581<MID>", "\u2581<EOT>"],
    "deepseek-coder": ["<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581end\uff5c>",
                       "<\uff5cend\u2581of\u2581sentence\uff5c>"],
    "qwen2.5-coder": ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>",
                      "<|endoftext|>"],
    "codestral": ["[SUFFIX]", "[PREFIX]"],
    "codegemma": ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"],
}

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n\nprint(add(1, 2))\n"
PART = ContextPart("definitions", "pkg/util.py", "def helper(x):\n    return x\n", 9)
HELPER = "def helper(x):\n    return x\n"

# family -> (without cross-file parts, with one part)
GOLDEN = {
    "starcoder": (
        f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>",
        f"<file_sep>pkg/util.py\n{HELPER}<file_sep>pkg/main.py\n<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>",
    ),
    "granite": (
        f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>",
        f"<fim_prefix># pkg/util.py\n{HELPER}# pkg/main.py\n{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>",
    ),
    "embedded": (
        f"<|endoftext|><file_sep>pkg/main.py\n<fim_prefix><fim_suffix>{SUFFIX}<fim_middle>{PREFIX}",
        f"<|endoftext|><file_sep>pkg/util.py\n{HELPER}<file_sep>pkg/main.py\n<fim_prefix><fim_suffix>{SUFFIX}"
        f"<fim_middle>{PREFIX}",
    ),
    "codellama": (
        f"\u2581<PRE> {PREFIX}\u2581<SUF>{SUFFIX}\u2581<MID>",
        f"\u2581<PRE> # pkg/util.py\n{HELPER}# pkg/main.py\n{PREFIX}\u2581<SUF>{SUFFIX}\u2581<MID>",
    ),
    "deepseek-coder": (
        f"<\uff5cfim\u2581begin\uff5c>{PREFIX}<\uff5cfim\u2581hole\uff5c>{SUFFIX}<\uff5cfim\u2581end\uff5c>",
        f"<\uff5cfim\u2581begin\uff5c># pkg/util.py\n{HELPER}# pkg/main.py\n{PREFIX}<\uff5cfim\u2581hole\uff5c>{SUFFIX}"
        "<\uff5cfim\u2581end\uff5c>",
    ),
    "qwen2.5-coder": (
        f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>",
        f"<|repo_name|>workspace\n<|file_sep|>pkg/util.py\n{HELPER}<|file_sep|>pkg/main.py\n"
        f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>",
    ),
    "codestral": (
        f"[SUFFIX]{SUFFIX}[PREFIX]{PREFIX}",
        f"[SUFFIX]{SUFFIX}[PREFIX]+++++ pkg/util.py\n{HELPER}\n+++++ pkg/main.py\n{PREFIX}",
    ),
    "codegemma": (
        f"<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>",
        f"# pkg/util.py\n{HELPER}<|file_separator|><|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>",
    ),
}

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_ctx(parts: list[ContextPart] | None = None, **changes: Any) -> CompletionContext:
    fields: dict[str, Any] = {"prefix": PREFIX, "suffix": SUFFIX, "parts": parts or [], "path": "pkg/main.py",
                              "language": "python", "multiline": True, "indent": "    ", "scope_kind": "function"}
    fields.update(changes)
    return CompletionContext(**fields)


def make_tokenizer(special: list[str], chat_template: str | None = None, name: str = "") -> PreTrainedTokenizerFast:
    """A small byte-level BPE with `special` added as special tokens (how published FIM tokenizers carry them)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[t for t in special if t == "<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(["def add(a, b):\n    return a + b\n", "print(add(1, 2))\n"], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, name_or_path=name)
    fast.add_special_tokens({"additional_special_tokens": special})
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


@pytest.fixture(scope="module")
def templates() -> dict[str, Any]:
    return load_templates()


# ------------------------------------------------------------------------------------------------------ loading


def test_every_family_ships_as_a_template_file(templates: dict[str, Any]) -> None:
    assert sorted(templates) == FAMILIES
    assert {p.stem for p in builtin_template_dir().glob("*.toml")} == set(FAMILIES)
    assert all(t.source is not None and t.source.stem == t.family for t in templates.values())


def test_published_spellings(templates: dict[str, Any]) -> None:
    for family, spellings in PUBLISHED.items():
        tokens = set(templates[family].tokens.values())
        assert set(spellings) <= tokens, family
    # The characters that look like ASCII but are not: full-width bars and the sentencepiece block.
    begin = templates["deepseek-coder"].tokens["FIM_BEGIN"]
    assert [hex(ord(c)) for c in (begin[1], begin[5], begin[-2])] == ["0xff5c", "0x2581", "0xff5c"]
    assert all(ord(s[0]) == 0x2581 for s in templates["codellama"].tokens.values())


@pytest.mark.parametrize("family", sorted(GOLDEN))
def test_golden_render(templates: dict[str, Any], family: str) -> None:
    tokenizer = make_tokenizer(PUBLISHED[family] + ["<fim_pad>"])
    template = resolve_template(templates[family], tokenizer)
    without, with_parts = GOLDEN[family]
    assert render_prompt(template, make_ctx()) == without
    assert render_prompt(template, make_ctx([PART])) == with_parts


def test_code_with_braces_is_inserted_verbatim(templates: dict[str, Any]) -> None:
    ctx = make_ctx(prefix="x = {'a': '{b}'}\nf'{x}'", suffix="}}{{")
    out = render_prompt(templates["starcoder"], ctx)
    assert out == "<fim_prefix>x = {'a': '{b}'}\nf'{x}'<fim_suffix>}}{{<fim_middle>"


def test_embedded_matches_the_training_format(templates: dict[str, Any]) -> None:
    from lsp_copilot.training.fim import render_file_header, render_fim

    ctx = make_ctx([PART])
    # every training example follows the previous one's <|endoftext|> in a packed row: a prompt starts the same way
    pieces = ["<|endoftext|>", *render_file_header(PART.path), PART.text, *render_file_header(ctx.path)]
    pieces += render_fim(ctx.prefix, "", ctx.suffix, spm=True)[:-2]  # drop the middle and <eos>: the model writes them
    assert render_prompt(templates["embedded"], ctx) == "".join(pieces)


def test_embedded_prompt_tokenizes_with_single_sentinels(templates: dict[str, Any],
                                                         tiny_models: tuple[Path, Path]) -> None:
    from transformers import AutoConfig, AutoTokenizer

    target, _ = tiny_models
    tokenizer = AutoTokenizer.from_pretrained(target)
    template = detect_template(tokenizer, AutoConfig.from_pretrained(target), templates)
    assert template.family == "embedded"
    ids = tokenizer.encode(render_prompt(template, make_ctx([PART])), add_special_tokens=True)
    vocab = tokenizer.get_vocab()
    specials = [i for i in ids if i < 6]
    assert specials == [vocab[t] for t in ("<|endoftext|>", "<file_sep>", "<file_sep>", "<fim_prefix>", "<fim_suffix>",
                                           "<fim_middle>")]
    assert stop_token_ids(template, tokenizer)[0] == vocab["<|endoftext|>"]


# ---------------------------------------------------------------------------------------------------- detection

DETECTION_CASES = [
    # (family expected, special tokens, config, tokenizer name)
    ("starcoder", ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<repo_name>",
                   "<file_sep>"], {"model_type": "starcoder2"}, "bigcode/starcoder2-3b"),
    ("starcoder", ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<filename>",
                   "<gh_stars>"], {"model_type": "gpt_bigcode"}, "bigcode/starcoderbase-1b"),
    ("granite", ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<filename>",
                 "<gh_stars>"], {"model_type": "llama"}, "ibm-granite/granite-3b-code-base"),
    ("granite", ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"],
     {"model_type": "granite"}, "/models/local-model"),
    ("embedded", ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>"],
     {"model_type": "llama"}, "lsp_copilot/models/target"),
    ("codellama", ["\u2581<PRE>", "\u2581<SUF>", "\u2581<MID>", "\u2581<EOT>"], {"model_type": "llama"},
     "codellama/CodeLlama-7b-hf"),
    ("deepseek-coder", PUBLISHED["deepseek-coder"], {"model_type": "llama"}, "deepseek-ai/deepseek-coder-1.3b-base"),
    ("qwen2.5-coder", PUBLISHED["qwen2.5-coder"] + ["<|fim_pad|>", "<|im_end|>"], {"model_type": "qwen2"},
     "Qwen/Qwen2.5-Coder-1.5B"),
    ("codestral", ["[INST]", "[/INST]", "[SUFFIX]", "[PREFIX]", "[MIDDLE]"], {"model_type": "mistral"},
     "mistralai/Codestral-22B-v0.1"),
    ("codegemma", PUBLISHED["codegemma"] + ["<eos>", "<start_of_turn>"], {"model_type": "gemma"},
     "google/codegemma-2b"),
]


@pytest.mark.parametrize(("family", "special", "config", "name"), DETECTION_CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in DETECTION_CASES])
def test_detects_family_from_tokens_and_config(templates: dict[str, Any], family: str, special: list[str],
                                               config: dict[str, str], name: str) -> None:
    tokenizer = make_tokenizer(special, name=name)
    assert detect_template(tokenizer, config, templates).family == family


def test_starcoder1_without_file_sep_falls_back_to_comments(templates: dict[str, Any]) -> None:
    tokenizer = make_tokenizer(["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<filename>"])
    template = detect_template(tokenizer, {"model_type": "gpt_bigcode"}, templates)
    assert template.crossfile.style == "comment"
    assert render_prompt(template, make_ctx([PART])).startswith(f"# pkg/util.py\n{HELPER}# pkg/main.py\n<fim_prefix>")


def test_instruct_models_with_fim_tokens_keep_fim(templates: dict[str, Any]) -> None:
    tokenizer = make_tokenizer(PUBLISHED["qwen2.5-coder"], chat_template=CHAT_TEMPLATE)
    assert detect_template(tokenizer, {"model_type": "qwen2"}, templates).family == "qwen2.5-coder"


def test_chat_model_without_fim_tokens_gets_chat_mode(templates: dict[str, Any]) -> None:
    tokenizer = make_tokenizer(["<|start|>", "<|end|>", "<|return|>"], chat_template=CHAT_TEMPLATE,
                               name="openai/gpt-oss-20b")
    template = detect_template(tokenizer, {"model_type": "gpt_oss"}, templates)
    assert template.family == "chat" and not template.syntax_stop
    prompt = render_prompt(template, make_ctx([PART]))
    assert prompt.startswith("<|system|>You are a code completion engine.")
    assert prompt.endswith("<|assistant|>")
    assert f"```\n{PREFIX}<FILL_HERE>{SUFFIX.rstrip()}\n```<|end|>" in prompt
    assert f"Related code from `pkg/util.py`:\n```\n{HELPER}```" in prompt


def test_refuses_a_model_that_fits_no_template(templates: dict[str, Any]) -> None:
    tokenizer = make_tokenizer(["<|endoftext|>"], name="some/base-model")
    with pytest.raises(TemplateError) as err:
        detect_template(tokenizer, {"model_type": "gpt2"}, templates)
    message = str(err.value)
    assert "some/base-model" in message and "no chat template" in message
    assert "<fim_prefix> <fim_suffix> <fim_middle>" in message  # which tokens were looked for
    assert 'model.template = "<family>"' in message and "prompts/<family>.toml" in message
    assert all(family in message for family in FAMILIES)


def test_override_is_checked_against_the_tokenizer(templates: dict[str, Any]) -> None:
    tokenizer = make_tokenizer(["<|endoftext|>"])
    with pytest.raises(TemplateError, match=r"'<fim_prefix>' is not in the vocabulary"):
        detect_template(tokenizer, {}, templates, override="starcoder")
    with pytest.raises(TemplateError, match="not a known family; known: chat, codegemma"):
        detect_template(tokenizer, {}, templates, override="nope")
    with pytest.raises(TemplateError, match="needs a tokenizer with a chat template"):
        detect_template(tokenizer, {}, templates, override="chat")
    fim = make_tokenizer(PUBLISHED["starcoder"])
    assert detect_template(fim, {}, templates, override="granite").family == "granite"


def test_a_sentinel_that_is_not_an_added_token_is_refused(templates: dict[str, Any]) -> None:
    vocab = {"[UNK]": 0, "<fim_prefix>": 1, "<fim_suffix>": 2, "<fim_middle>": 3, "<|endoftext|>": 4}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()  # splits "<fim_prefix>" into "<", "fim_prefix", ">"
    with pytest.raises(TemplateError, match="encodes to 3 tokens"):
        check_template(templates["granite"], PreTrainedTokenizerFast(tokenizer_object=raw))


# ------------------------------------------------------------------------------------------------ user templates

USER_TEMPLATE = """
family = "mymodel"
description = "a new family, added without touching Python"
format = "{BEGIN}{prefix}{HOLE}{suffix}{END}"
stop = ["<end>"]
[tokens]
BEGIN = "<begin>"
HOLE = "<hole>"
END = "<end>"
[detect]
priority = 25
"""


def test_user_directory_adds_and_overrides_families(tmp_path: Path, templates: dict[str, Any]) -> None:
    (tmp_path / "mymodel.toml").write_text(USER_TEMPLATE)
    starcoder = (builtin_template_dir() / "starcoder.toml").read_text()
    (tmp_path / "starcoder.toml").write_text(starcoder.replace('priority = 10', 'priority = 11'))
    loaded = load_templates([tmp_path])
    assert loaded["starcoder"].detect.priority == 11 and loaded["starcoder"].source == tmp_path / "starcoder.toml"
    tokenizer = make_tokenizer(["<begin>", "<hole>", "<end>"])
    template = detect_template(tokenizer, {"model_type": "llama"}, loaded)
    assert template.family == "mymodel"
    assert render_prompt(template, make_ctx()) == f"<begin>{PREFIX}<hole>{SUFFIX}<end>"


@pytest.mark.parametrize(("content", "problem"), [
    ("family = 'bad'\nformat = '{prefix}{suffix}'", "must match the file name"),
    ("format = '{prefix}{suffix}{nope}'", "unknown placeholder {nope}"),
    ("format = '{prefix}'", "{prefix} and {suffix} exactly once"),
    ("format = '{prefix}{suffix}'\nprefix_first = false", "contradicts the format order"),
    ("format = '{prefix}{suffix}'\n[tokens]\nlower = '<x>'", "must be upper case"),
    ("format = '{prefix}{suffix}'\nstop = 'x'", "`stop` must be a list of strings"),
    ("format = '{prefix}{suffix}'\ncolour = 1", "unknown key(s) colour"),
    ("format = '{prefix}{suffix}'\nallow_empty = 'no'", "allow_empty"),
    ("format = '{prefix}{suffix}'\n[detect]\nname_patterns = ['(']", "bad name pattern"),
    ("format = '{prefix}{suffix}'\n[crossfile]\nstyle = 'header'", "needs a `part` format"),
    ("mode = 'chat'", "needs a [chat] table"),
    ("format = [", "invalid TOML"),
])
def test_malformed_templates_are_refused_with_the_file_and_reason(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(content)
    with pytest.raises(TemplateError) as err:
        load_templates([tmp_path])
    assert str(path) in str(err.value) and problem in str(err.value)
    errors: list[str] = []
    loaded = load_templates([tmp_path, tmp_path / "missing"], errors=errors)  # nothing else is lost
    assert sorted(loaded) == FAMILIES and len(errors) == 2 and "does not exist" in errors[1]


# ------------------------------------------------------------------------------------------------ extract_middle


def test_fim_extraction_cuts_at_the_first_stop(templates: dict[str, Any]) -> None:
    assert extract_middle(templates["starcoder"], "return a + b<file_sep>junk<|endoftext|>") == "return a + b"


@pytest.mark.parametrize(("answer", "middle"), [
    ("```python\nreturn a + b\n```", "return a + b"),
    ("Sure! Here it is:\n```\nreturn a + b\n```\nThis adds the numbers.", "return a + b"),
    ("analysisWe need a sum. Maybe ```x``` no.assistantfinal```python\nreturn a + b\n```", "return a + b"),
    ("<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>```py\nreturn a + b\n```"
     "<|return|>", "return a + b"),
    ("```python\nreturn a + b\n", "return a + b"),  # cut off by the token limit: unclosed fence
    ("```\nif a:\n    return a + b\n```\n\n```\nother\n```", "other"),  # the last block is the answer
    ("return a + b", "return a + b"),  # no fence at all
    ("```python\ndef add(a, b):\n    return a + b\n```", "return a + b"),  # echoed the cursor line
    ("```python\nreturn a + b<FILL_HERE>\n```", "return a + b"),
])
def test_chat_extraction(templates: dict[str, Any], answer: str, middle: str) -> None:
    ctx = make_ctx(prefix="def add(a, b):\n    return", suffix="\n") if "def add" in answer else make_ctx()
    expected = " a + b" if "def add" in answer else middle
    assert extract_middle(templates["chat"], answer, ctx) == expected


def test_chat_template_kwargs_reach_apply_chat_template(templates: dict[str, Any]) -> None:
    tokenizer = make_tokenizer([], chat_template="{{ reasoning_effort }}|{{ messages[-1]['content'][:8] }}")
    template = detect_template(tokenizer, {}, templates)
    assert render_prompt(template, make_ctx()) == "low|Complete"
    json.dumps(template.chat.template_kwargs if template.chat else None)  # plain data


def test_every_package_directory_ships(templates: dict[str, Any]) -> None:
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(d.relative_to(root).parts) for d in (root / "lsp_copilot").rglob("*")
             if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))}
    assert found | {"lsp_copilot"} <= listed, "add the missing packages to [tool.setuptools] packages"
    assert config["package-dir"]["lsp_copilot.prompt_templates"] == "prompts"
    assert (root / "prompts" / "__init__.py").exists()


def test_fim_templates_ban_their_sentinels_but_not_their_end_token(templates: dict[str, Any]) -> None:
    from lsp_copilot.prompts import banned_tokens

    assert sorted(banned_tokens(templates["embedded"])) == sorted(
        ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>"])
    assert "\u2581<EOT>" not in banned_tokens(templates["codellama"])
    assert "\u2581<MID>" in banned_tokens(templates["codellama"])
    assert banned_tokens(templates["chat"]) == []


def test_only_the_embedded_template_asks_for_non_empty_answers(templates: dict[str, Any]) -> None:
    assert templates["embedded"].allow_empty is False
    assert all(t.allow_empty for name, t in templates.items() if name != "embedded")
