"""BPE tokenizers: training with HF tokenizers, fast encoding with tiktoken."""
