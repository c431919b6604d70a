"""Fixtures shared by test modules: an S3-compatible server on 127.0.0.1 for the object-storage
tests, started once per test session and stopped after it."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from corpusmill.core.storage import ObjectPath

_BUCKETS = itertools.count()


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and the storage options that reach it."""

    endpoint: str
    options: dict[str, Any]

    def bucket(self) -> ObjectPath:
        """A new, empty bucket on the server."""
        root = ObjectPath(f"s3://test-bucket-{next(_BUCKETS):04d}", self.options)
        root.fs.mkdir(root.path)
        return root


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free port of 127.0.0.1, with fake credentials in its options."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {
        "endpoint_url": f"http://{host}:{port}",
        "key": "testing",
        "secret": "testing",
        "use_listings_cache": False,
    }
    try:
        yield S3Server(endpoint=options["endpoint_url"], options=options)
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> ObjectPath:
    """A new, empty bucket of the session's S3 server."""
    return s3_server.bucket()
