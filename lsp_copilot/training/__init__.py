"""Training of the embedded default models: corpus, tokenizer, FIM data and the training loop."""
