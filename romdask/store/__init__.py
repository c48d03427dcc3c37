"""The snapshot store: a Zarr v3 group with the mesh and the runs' histories, by subdomain.

See ``docs/store.md`` for the layout. Write with :func:`create_store` /
:meth:`SnapshotStore.writer` / :func:`ingest`; read lazily with :func:`open_snapshots` /
:func:`open_run`.
"""

from .atomic import RunBusyError
from .ingest import group_sources, ingest
from .layout import FORMAT, VERSION, StoreLayout
from .view import open_run, open_snapshots
from .writer import RunWriter, SnapshotStore, create_store

__all__ = [
    "FORMAT",
    "VERSION",
    "RunBusyError",
    "RunWriter",
    "SnapshotStore",
    "StoreLayout",
    "create_store",
    "group_sources",
    "ingest",
    "open_run",
    "open_snapshots",
]
