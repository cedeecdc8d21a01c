"""What the model sees: windows, scope, single- vs multi-line, imports, definitions, snippets, token budget."""

from lsp_copilot.context.builder import CompletionContext, ContextBuilder, ContextPart
from lsp_copilot.context.describe import describe_context, format_context
from lsp_copilot.context.ondisk import WorkspaceContext, estimate_tokens
from lsp_copilot.context.settings import ContextSettings

__all__ = [
    "CompletionContext", "ContextBuilder", "ContextPart", "ContextSettings", "WorkspaceContext", "describe_context",
    "estimate_tokens", "format_context",
]
