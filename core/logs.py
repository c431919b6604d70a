"""The format of corpusmill's log lines, the same from the command and from its Dask workers."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
