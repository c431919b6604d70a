"""A run's storage credentials on every worker of its cluster, in memory: the storage options a
task receives name them by id only (core/storage.py StorageOptions), so that nothing a worker
spills to its disk holds a secret."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from distributed import Client, WorkerPlugin

from corpusmill.core.storage import StorageOptions, credentials, remember_credentials


@contextlib.contextmanager
def credentials_on_workers(client: Client, options: Mapping[str, Any]) -> Iterator[None]:
    """Give the credentials of `options` to every worker of `client`'s cluster while the block
    runs, also to a worker that joins or restarts meanwhile; the scheduler forgets them after.

    A worker plugin of this run's own name, so that runs with other credentials on the same
    cluster keep theirs.
    """
    options = StorageOptions(options)
    secrets = credentials(options)
    if not secrets:
        yield
        return
    name = f"corpusmill-credentials-{uuid.uuid4().hex}"
    client.register_plugin(_Credentials(options.secrets_id, secrets), name=name)
    try:
        yield
    finally:
        client.unregister_worker_plugin(name)


class _Credentials(WorkerPlugin):
    """Hands a run's credentials to a worker when the worker sets it up."""

    def __init__(self, secrets_id: str, secrets: Mapping[str, str]) -> None:
        self.secrets_id = secrets_id
        self.secrets = dict(secrets)

    def setup(self, worker: Any) -> None:
        remember_credentials(self.secrets, self.secrets_id)
