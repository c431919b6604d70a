"""Compression report: general-purpose compressors, the tokenizer, and models as coders."""
