"""A tiny GPT in numpy: forward and backward per layer, AdamW, a training loop on the loader."""
