"""The embedded default models (target and draft), shipped as safetensors with their tokenizer and model card."""
