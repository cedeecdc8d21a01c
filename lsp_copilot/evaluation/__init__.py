"""Quality measurements: `eval humaneval-infill`, the cross-file evaluation, and draft agreement."""

from lsp_copilot.evaluation.agreement import AgreementSettings, measure_agreement
from lsp_copilot.evaluation.completers import Completer, Completion, CompletionQuery
from lsp_copilot.evaluation.crossfile import CrossFileSettings, run_crossfile
from lsp_copilot.evaluation.humaneval_infill import HumanEvalSettings, run_humaneval_infill
from lsp_copilot.evaluation.sandbox import SandboxLimits, SandboxResult, run_program

__all__ = [
    "AgreementSettings", "Completer", "Completion", "CompletionQuery", "CrossFileSettings", "HumanEvalSettings",
    "SandboxLimits", "SandboxResult", "measure_agreement", "run_crossfile", "run_humaneval_infill", "run_program",
]
