"""The corpus pipeline: read crawl dumps, clean, deduplicate and tokenize them on Dask."""
