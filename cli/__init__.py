"""The `corpusmill` command line."""
