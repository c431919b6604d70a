"""The run's storage options on every worker of its cluster, for the code that opens URLs with
fsspec itself (the readers): a worker plugin, so that a worker that joins or restarts later gets
them too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distributed import Client, WorkerPlugin

from corpusmill.core.storage import apply_to_fsspec

# The plugin's name on the cluster: registering it again, as each run does, replaces it.
PLUGIN_NAME = "corpusmill-storage"


def share_storage_options(client: Client, options: Mapping[str, Any]) -> None:
    """Make `options` the S3 defaults of fsspec on every worker of `client`'s cluster, now and
    on any worker that starts later."""
    client.register_plugin(StorageOptions(options), name=PLUGIN_NAME)


class StorageOptions(WorkerPlugin):
    """Applies a run's storage options to fsspec when a worker sets it up."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def setup(self, worker: Any) -> None:
        apply_to_fsspec(self.options)
