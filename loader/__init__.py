"""Streaming the Arrow shards of a run to a training loop: numpy and pyarrow only."""
