"""Streaming the Arrow shards of a run to a training loop: numpy and pyarrow only."""

from corpusmill.loader.dataset import TokenDataset
from corpusmill.loader.format import FormatError
from corpusmill.loader.stream import TokenStream

__all__ = ["FormatError", "TokenDataset", "TokenStream"]
