"""Writing an export of the log from its database (the file ``ttp audit verify`` reads).

The export is taken at the head read first: entries and checkpoints above
that size, appended while the export runs, are left out, so the file is
always one consistent tree. Reads page through the tables, so memory stays
flat however long the log is.
"""

from __future__ import annotations

from typing import IO

from services.audit.store import AuditStore
from ttp.audit_export import write_export
from ttp.checkpoint import parse_checkpoint


def export_log(store: AuditStore, out: IO[bytes]) -> int:
    """Write the whole log to ``out``; returns its tree size."""
    head = store.head()
    origin = parse_checkpoint(head.checkpoint)[0].origin
    write_export(
        out,
        origin,
        ((e.index, e.leaf_hash, e.body) for e in store.iter_entries(head.tree_size)),
        store.iter_checkpoints(head.tree_size),
        head.tree_size,
    )
    return head.tree_size
