"""Global deduplication: exact hashes and MinHash-LSH near duplicates, on Dask."""
