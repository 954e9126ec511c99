"""Durable storage of the log: the single-writer append and the reads behind proofs.

Why it is built this way:

* **One writer, one order.** Every append locks the one ``audit_tree_head``
  row (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite)
  before it reads the size, so two processes can never hand out the same leaf
  index, and a batch's entries are contiguous.
* **Batch everything.** A whole batch is serialised, hashed and folded into
  the tree in memory, then written with one ``executemany`` per table and one
  commit (one fsync). Only the compact range (at most 64 hashes) is read to
  append; the rest of the log is never touched.
* **Durable before acknowledged.** The caller gets its leaf indexes only
  after the commit returns; on SQLite the audit engine runs with
  ``synchronous=FULL`` so a commit survives power loss, not just a crash.
* **Idempotent.** An event whose ``idempotencyKey`` is already in the log (or
  earlier in the same batch) is not appended again; it gets the existing leaf.

The methods here are synchronous and meant to run in a worker thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Column, Connection, Engine, Table, event, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.audit.entries import derived_columns, encode_entry
from services.audit.models import NODE_STRIDE, Entry, Node, SignedCheckpoint, TreeHead
from ttp.audit_events import AuditEvent
from ttp.bulk_write import insert_rows
from ttp.checkpoint import CheckpointSigner, format_time, parse_checkpoint
from ttp.db import make_engine
from ttp.key_lookup import lookup_in
from ttp.merkle import (
    CompactRange,
    Levels,
    consistency_proof,
    decomposition,
    inclusion_proofs,
    leaf_hash,
    node_hash,
)

HEAD_ID = 1
#: Rows per ``IN (...)`` lookup: well below SQLite's and PostgreSQL's bind limits.
LOOKUP_CHUNK = 1000
#: Rows per page when streaming entries out.
STREAM_CHUNK = 5000
ENTRY = cast(Table, Entry.__table__)
NODE = cast(Table, Node.__table__)
ENTRY_COLUMNS = (
    "idx", "timestamp", "kind", "actor_oin", "recorded_by", "provider", "period", "idempotency_key",
    "leaf_hash", "body",
)


def make_audit_engine(url: str) -> Engine:
    """An engine for the log: explicit ``BEGIN IMMEDIATE`` writes and full fsync on SQLite.

    pysqlite opens transactions lazily and always ``DEFERRED``, which lets two
    writers both read the head before either locks it. Taking over ``BEGIN``
    (SQLAlchemy's documented recipe) lets a write transaction ask for the
    write lock up front via the ``sqlite_begin`` execution option.
    """
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _read_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """A raw driver value of ``column`` as SQLAlchemy would return it (the key lookup reads raw rows)."""
    processor = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    return processor(value) if processor else value


def _utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back naive; they were written as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Head:
    """The log's current state."""

    tree_size: int
    root_hash: bytes
    compact: CompactRange
    checkpoint: str
    updated_at: dt.datetime


@dataclass(frozen=True)
class AppendResult:
    """What one append did, per input event in input order."""

    leaf_indexes: list[int]
    leaf_hashes: list[bytes]
    timestamps: list[str]
    appended: int
    head: Head
    #: Nodes touching the appended leaves (None if nothing was appended), for cheap proofs.
    levels: Levels | None
    #: The size before this append: leaves at or above it are new.
    first_new: int

    @staticmethod
    def only_last(result: AppendResult) -> AppendResult:
        """The same append narrowed to its last event, for a receipt that proves one leaf."""
        return dataclasses.replace(
            result, leaf_indexes=result.leaf_indexes[-1:], leaf_hashes=result.leaf_hashes[-1:],
            timestamps=result.timestamps[-1:],
        )


@dataclass(frozen=True)
class StoredEntry:
    """One leaf as stored, for reads and exports."""

    index: int
    leaf_hash: bytes
    body: bytes


class NodeReader:
    """Perfect-subtree hashes of the tree of ``size`` leaves, from the database.

    A node at a stored level is one row; any other node is folded from at most
    ``2**(NODE_STRIDE-1)`` rows of the stored level below it. ``prefetch``
    loads every node the proofs of a run of leaves need in one range query
    per stored level, so a resent batch of thousands of leaves does not cost
    thousands of queries.
    """

    def __init__(self, conn: Connection, size: int, known: Levels | None = None) -> None:
        self.conn = conn
        self.size = size
        self.known = known
        self.cache: dict[tuple[int, int], bytes] = {}

    def seed(self, compact: CompactRange) -> None:
        """Remember the perfect subtrees of a compact range (no reads needed for them)."""
        for level, index, h in compact.nodes():
            self.cache[(level, index)] = h

    def perfect(self, level: int, index: int) -> bytes:
        if (index + 1) << level > self.size:
            raise ValueError(f"node ({level}, {index}) is not complete in a tree of size {self.size}")
        hit = self.cache.get((level, index))
        if hit is not None:
            return hit
        if self.known is not None:
            try:
                return self.known.perfect(level, index)
            except KeyError:
                pass
        base = level - level % NODE_STRIDE
        span = 1 << (level - base)
        run = self._stored_run(base, index * span, (index + 1) * span)
        for _ in range(level - base):
            run = [node_hash(run[i], run[i + 1]) for i in range(0, len(run), 2)]
        self.cache[(level, index)] = run[0]
        return run[0]

    def prefetch(self, indexes: Sequence[int]) -> None:
        """Load, per stored level, the range of nodes the proofs of ``indexes`` need."""
        if not indexes:
            return
        lo, hi = min(indexes), max(indexes)
        if hi - lo > 4 * len(indexes) + 1024:
            return  # scattered leaves: single lookups are cheaper than a huge range
        top_level = self.size.bit_length()
        for base in range(0, top_level + 1, NODE_STRIDE):
            # One aligned run of stored nodes at `base` covers, for every level up to
            # `top`, the nodes on the paths of lo..hi and their siblings.
            top = min(base + NODE_STRIDE - 1, top_level)
            start = max(0, (lo >> top) - 1) << (top - base)
            stop = min(((hi >> top) + 2) << (top - base), self.size >> base)
            if stop <= start:
                continue
            run = self._stored_run(base, start, stop)
            first = start
            for level in range(base, top + 1):
                for i, h in enumerate(run):
                    self.cache[(level, first + i)] = h
                if level == top:
                    break
                run = [node_hash(run[i], run[i + 1]) for i in range(0, len(run) - 1, 2)]
                first //= 2

    def _stored_run(self, level: int, start: int, stop: int) -> list[bytes]:
        if level == 0:
            stmt = select(Entry.leaf_hash).where(Entry.idx >= start, Entry.idx < stop).order_by(Entry.idx)
        else:
            stmt = (
                select(Node.hash)
                .where(Node.level == level, Node.idx >= start, Node.idx < stop)
                .order_by(Node.idx)
            )
        run = list(self.conn.execute(stmt).scalars())
        if len(run) != stop - start:
            raise LookupError(f"stored level {level} is missing nodes in [{start}, {stop})")
        return run


class ForeignLog(RuntimeError):
    """The database holds a log of another origin, which this version must not continue.

    In practice a log written before content hashes were keyed
    (``outcome-ttp.example.nl/audit``): its record entries hold unkeyed
    SHA-256 digests of whole records, which give a client's identifiers back
    by brute force, and an append-only log cannot have them removed. It stays
    readable (``ttp audit export``, ``ttp audit verify``) for the auditor who
    must close it; new entries go to a new log in an empty database.
    """

    def __init__(self, found: str, expected: str) -> None:
        super().__init__(
            f"The audit database holds the log {found!r}, not {expected!r}: it was written by an earlier "
            "version (whose record entries carry unkeyed content hashes) and is not continued. Export it "
            "with 'ttp audit export' for the auditor, move the database aside for its retention, and start "
            "the audit service on an empty database to begin the new log."
        )
        self.found = found
        self.expected = expected


class AuditStore:
    """The log's database, with the signer that commits to each new head."""

    def __init__(self, engine: Engine, signer: CheckpointSigner | None = None) -> None:
        """``signer`` is needed to write; read-only users (exports) go without the private key."""
        self.engine = engine
        self._signer = signer
        #: The time source for entries and checkpoints (replaceable in tests).
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    @property
    def signer(self) -> CheckpointSigner:
        if self._signer is None:
            raise RuntimeError("this store was opened read-only (no signing key)")
        return self._signer

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def ensure_head(self) -> Head:
        """Create the empty log's head and signed checkpoint on first start."""
        with self.engine.connect() as conn:
            row = conn.execute(select(TreeHead).where(TreeHead.id == HEAD_ID)).first()
        if row is None:
            now = self.clock()
            empty = CompactRange.empty()
            note = self.signer.sign(0, empty.root(), now)
            try:
                with self._write() as conn:
                    conn.execute(insert(TreeHead).values(
                        id=HEAD_ID, tree_size=0, root_hash=empty.root(), compact_range=b"",
                        checkpoint=note, updated_at=now))
                    conn.execute(insert(SignedCheckpoint).values(tree_size=0, note=note, signed_at=now))
            except IntegrityError:
                pass  # another process created it first
        head = self.head()
        if head.compact.root() != head.root_hash:
            raise RuntimeError("the stored compact range does not match the stored root: log damaged")
        origin = parse_checkpoint(head.checkpoint)[0].origin
        if origin != self.signer.origin:
            raise ForeignLog(origin, self.signer.origin)
        return head

    def head(self, conn: Connection | None = None) -> Head:
        if conn is None:
            with self.engine.connect() as own:
                return self.head(own)
        row = conn.execute(select(TreeHead).where(TreeHead.id == HEAD_ID)).one()
        return Head(
            tree_size=row.tree_size,
            root_hash=row.root_hash,
            compact=CompactRange.from_bytes(row.tree_size, row.compact_range),
            checkpoint=row.checkpoint,
            updated_at=_utc(row.updated_at),
        )

    def append(self, events: Sequence[AuditEvent], recorded_by: str) -> AppendResult:
        """Append ``events`` as one batch; returns once they are committed (see ``proofs``)."""
        with self._write() as conn:
            locked = conn.execute(
                select(TreeHead).where(TreeHead.id == HEAD_ID).with_for_update()
            ).one()
            size = locked.tree_size
            compact = CompactRange.from_bytes(size, locked.compact_range)
            existing = self._existing_keys(conn, [e.idempotencyKey for e in events if e.idempotencyKey])
            moment = max(self.clock(), _utc(locked.updated_at))
            stamp = format_time(moment)

            indexes: list[int] = []
            hashes: list[bytes] = []
            stamps: list[str] = []
            rows: list[tuple[Any, ...]] = []
            batch_keys: dict[str, int] = {}
            for ev in events:
                key = ev.idempotencyKey
                if key is not None:
                    if key in existing:
                        idx, h, ts = existing[key]
                        indexes.append(idx)
                        hashes.append(h)
                        stamps.append(ts)
                        continue
                    if key in batch_keys:
                        pos = batch_keys[key]
                        indexes.append(indexes[pos])
                        hashes.append(hashes[pos])
                        stamps.append(stamps[pos])
                        continue
                    batch_keys[key] = len(indexes)
                idx = size + len(rows)
                body = encode_entry(idx, stamp, ev, recorded_by)
                h = leaf_hash(body)
                provider, period = derived_columns(ev)
                rows.append((idx, moment, ev.kind, ev.actorOin, recorded_by, provider, period, key, h, body))
                indexes.append(idx)
                hashes.append(h)
                stamps.append(stamp)

            if not rows:
                head = self.head(conn)
                levels: Levels | None = None
            else:
                new_compact, levels = compact.append([r[8] for r in rows])
                new_size = new_compact.size
                note = self.signer.sign(new_size, new_compact.root(), moment)
                insert_rows(conn, ENTRY, ENTRY_COLUMNS, rows, binary=True)
                insert_rows(conn, NODE, ("level", "idx", "hash"), _new_stored_nodes(levels, size), binary=True)
                conn.execute(insert(SignedCheckpoint).values(tree_size=new_size, note=note, signed_at=moment))
                conn.execute(
                    update(TreeHead).where(TreeHead.id == HEAD_ID).values(
                        tree_size=new_size, root_hash=new_compact.root(),
                        compact_range=new_compact.to_bytes(), checkpoint=note, updated_at=moment)
                )
                head = Head(new_size, new_compact.root(), new_compact, note, moment)

        return AppendResult(indexes, hashes, stamps, len(rows), head, levels, size)

    def proofs(self, result: AppendResult) -> list[list[bytes]]:
        """Inclusion proofs of an append's leaves at its new head, in input order.

        Separate from ``append`` so the caller can compute them after releasing
        the writer lock. New leaves are proven from the in-memory levels of the
        append; leaves that were already in the log (idempotent resends) from
        stored subtree hashes, prefetched as one range per stored level.
        """
        indexes, head, levels = result.leaf_indexes, result.head, result.levels
        old = sorted({i for i in indexes if i < result.first_new})
        if not old and levels is not None:
            return inclusion_proofs(levels, indexes, head.tree_size)
        with self.engine.connect() as conn:
            reader = NodeReader(conn, head.tree_size, known=levels)
            reader.seed(head.compact)
            reader.prefetch(old)
            return inclusion_proofs(reader, indexes, head.tree_size)

    @staticmethod
    def _existing_keys(conn: Connection, keys: list[str]) -> dict[str, tuple[int, bytes, str]]:
        rows = lookup_in(conn, ENTRY, "idempotency_key", ("idx", "leaf_hash", "timestamp"),
                         list(dict.fromkeys(keys)), chunk=LOOKUP_CHUNK)
        return {
            key: (idx, bytes(h), format_time(_utc(_read_value(conn, ENTRY.c.timestamp, ts))))
            for key, idx, h, ts in rows
        }

    # ----- reads -------------------------------------------------------------------------

    def checkpoint(self, tree_size: int | None = None) -> str | None:
        """The signed checkpoint at ``tree_size`` (default: the latest), if the log signed one."""
        if tree_size is None:
            return self.head().checkpoint
        with self.engine.connect() as conn:
            note: str | None = conn.execute(
                select(SignedCheckpoint.note).where(SignedCheckpoint.tree_size == tree_size)
            ).scalar_one_or_none()
        return note

    def inclusion_proof(self, index: int, tree_size: int) -> tuple[bytes, list[bytes]]:
        """Leaf hash and proof of leaf ``index`` in the tree of ``tree_size`` (<= current size)."""
        with self.engine.connect() as conn:
            head = self.head(conn)
            if not 0 <= index < tree_size <= head.tree_size:
                raise ValueError("need 0 <= leafIndex < treeSize <= the log's size")
            reader = NodeReader(conn, tree_size)
            if tree_size == head.tree_size:
                reader.seed(head.compact)
            return reader.perfect(0, index), inclusion_proofs(reader, [index], tree_size)[0]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes (<= current size)."""
        with self.engine.connect() as conn:
            head = self.head(conn)
            if not 0 <= old_size <= new_size <= head.tree_size:
                raise ValueError("need 0 <= old size <= new size <= the log's size")
            reader = NodeReader(conn, new_size)
            if new_size == head.tree_size:
                reader.seed(head.compact)
            return consistency_proof(reader, old_size, new_size)

    def root_at(self, tree_size: int) -> bytes:
        """The root hash of the tree of ``tree_size`` leaves, from stored subtree hashes."""
        with self.engine.connect() as conn:
            reader = NodeReader(conn, tree_size)
            hashes = [reader.perfect(lv, ix) for lv, ix in decomposition(tree_size)]
        return CompactRange(tree_size, tuple(hashes)).root()

    def entries(
        self,
        *,
        start: int = 0,
        end: int | None = None,
        limit: int = 1000,
        provider: str | None = None,
        kind: str | None = None,
        period: str | None = None,
        without_period: bool = False,
    ) -> list[StoredEntry]:
        """Entries with ``start <= index < end`` matching the filters, in log order.

        ``without_period`` selects entries whose subject names no single period.
        """
        stmt = select(Entry.idx, Entry.leaf_hash, Entry.body).where(Entry.idx >= start)
        if end is not None:
            stmt = stmt.where(Entry.idx < end)
        if provider is not None:
            stmt = stmt.where(Entry.provider == provider)
        if kind is not None:
            stmt = stmt.where(Entry.kind == kind)
        if period is not None:
            stmt = stmt.where(Entry.period == period)
        if without_period:
            stmt = stmt.where(Entry.period.is_(None))
        stmt = stmt.order_by(Entry.idx).limit(limit)
        with self.engine.connect() as conn:
            return [StoredEntry(i, h, b) for i, h, b in conn.execute(stmt)]

    def iter_entries(self, end: int, **filters: Any) -> Iterator[StoredEntry]:
        """Stream entries below ``end`` (matching ``filters``) page by page, memory flat."""
        start = 0
        while start < end:
            page = self.entries(start=start, end=end, limit=STREAM_CHUNK, **filters)
            if not page:
                return
            yield from page
            start = page[-1].index + 1

    def iter_checkpoints(self, end: int) -> Iterator[tuple[int, str]]:
        """Every signed checkpoint with ``tree_size <= end``, oldest first."""
        last = -1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(SignedCheckpoint.tree_size, SignedCheckpoint.note)
                    .where(SignedCheckpoint.tree_size > last, SignedCheckpoint.tree_size <= end)
                    .order_by(SignedCheckpoint.tree_size)
                    .limit(STREAM_CHUNK)
                ).all()
            if not rows:
                return
            yield from ((size, note) for size, note in rows)
            last = rows[-1][0]


def _new_stored_nodes(levels: Levels, old_size: int) -> list[tuple[int, int, bytes]]:
    """Rows for the stored-level nodes an append completed (those ending past ``old_size``)."""
    rows: list[tuple[int, int, bytes]] = []
    for level in range(NODE_STRIDE, len(levels.runs), NODE_STRIDE):
        first, run = levels.runs[level]
        for i, h in enumerate(run):
            idx = first + i
            if (idx + 1) << level > old_size:
                rows.append((level, idx, h))
    return rows
