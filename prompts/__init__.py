"""Prompt templates, one `<family>.toml` per model family (shipped as package data `lsp_copilot.prompt_templates`)."""
