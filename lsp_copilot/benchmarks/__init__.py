"""Benchmarks behind `lsp-copilot bench`: decode speed (decode.py) and context building."""
