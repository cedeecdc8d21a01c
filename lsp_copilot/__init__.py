"""lsp-copilot: an on-prem code completion language server driven by a local causal LM."""

__version__ = "0.1.0"
