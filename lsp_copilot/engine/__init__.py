"""Generation engine: model loading, prefix-cached KV, decode loop with lossless speculation, streaming, scheduler."""

from lsp_copilot.engine.engine import Engine, EngineStats
from lsp_copilot.engine.scheduler import Scheduler
from lsp_copilot.engine.types import (
    CancelToken,
    EngineSettings,
    GenerationRequest,
    GenerationResult,
    ModelLoadError,
    RankedAnswer,
    RequestError,
    RerankRequest,
)

__all__ = [
    "CancelToken",
    "Engine",
    "EngineSettings",
    "EngineStats",
    "GenerationRequest",
    "GenerationResult",
    "ModelLoadError",
    "RankedAnswer",
    "RequestError",
    "RerankRequest",
    "Scheduler",
]
