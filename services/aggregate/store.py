"""Two-phase delivery into the trajectory store, and consent withdrawal.

``prepare`` classifies a batch against the live store (new, duplicate,
correction, refused) and stages it; ``commit`` applies it in one transaction
once ingest has the audit entries durable. A resent batch gets its original
outcome back, so a retry never counts twice; a batch prepared but never
committed is simply prepared again.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, delete, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.aggregate.bulk_insert import bulk_insert
from services.aggregate.models import (
    GoalScore,
    Measurement,
    Person,
    PersonPseudonym,
    Trajectory,
    TrajectoryBatch,
    Withdrawal,
)
from services.aggregate.recompute import mark_dirty
from services.aggregate.wire import (
    BatchOutcome,
    PrepareRequest,
    RefusedRecord,
    WireTrajectory,
    WithdrawalOutcome,
    WithdrawalRequest,
)

CHUNK = 2000
T = cast(Table, Trajectory.__table__)
M = cast(Table, Measurement.__table__)
G = cast(Table, GoalScore.__table__)
PP = cast(Table, PersonPseudonym.__table__)
P = cast(Table, Person.__table__)
B = cast(Table, TrajectoryBatch.__table__)
W = cast(Table, Withdrawal.__table__)


class _PreparedCache:
    """The last few prepared batches, already validated, so commit need not parse them again.

    Only an optimisation: after a restart commit parses the staged payload
    from the database, which is the source of truth.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._items: collections.OrderedDict[tuple[str, str, str], PrepareRequest] = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, digest: str, req: PrepareRequest) -> None:
        with self._lock:
            self._items[(req.providerAgb, req.batchId, digest)] = req
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def pop(self, provider: str, batch_id: str, digest: str) -> PrepareRequest | None:
        with self._lock:
            return self._items.pop((provider, batch_id, digest), None)


PREPARED = _PreparedCache()


class BatchConflict(Exception):
    """The batch id was used before with other content, or the store changed under a prepared batch."""


class BatchNotFound(Exception):
    """Commit of a batch that was never prepared."""


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def payload_hash(req: PrepareRequest) -> str:
    """Identity of a batch's content: its records' ids and content hashes, in order."""
    h = hashlib.sha256()
    for t in req.trajectories:
        h.update(t.recordId.encode())
        h.update(b"\x00")
        h.update(t.contentHash.encode())
        h.update(b"\x01")
    return h.hexdigest()


def person_id_from(pseudonym: str) -> int:
    """A stable 63-bit surrogate id for a new person, derived from its first pseudonym.

    Deriving it (instead of a sequence) lets a whole batch of new persons be
    inserted with one ``executemany`` and no round trip per person.
    """
    return int(pseudonym[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF


def _existing_persons(conn: Connection, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    found: dict[tuple[int, str], int] = {}
    values = list(pairs)
    for chunk in _chunks(values):
        rows = conn.execute(
            select(PP.c.key_version, PP.c.pseudonym, PP.c.person_id).where(
                PP.c.pseudonym.in_([p for _, p in chunk])
            )
        )
        for version, pseudonym, person_id in rows:
            found[(version, pseudonym)] = person_id
    return found


def resolve_persons(
    conn: Connection, trajectories: Sequence[WireTrajectory], *, create: bool
) -> list[int | None]:
    """Map each trajectory to its person, linking across key versions; optionally create persons."""
    pairs = {(p.keyVersion, p.value) for t in trajectories for p in t.pseudonyms}
    known = _existing_persons(conn, pairs)
    result: list[int | None] = []
    new_aliases: dict[tuple[int, str], int] = {}
    new_persons: set[int] = set()
    for t in trajectories:
        keys = [(p.keyVersion, p.value) for p in t.pseudonyms]
        person = next((known[k] for k in keys if k in known), None)
        if person is None:
            person = next((new_aliases[k] for k in keys if k in new_aliases), None)
        if person is None and create:
            newest = max(t.pseudonyms, key=lambda p: p.keyVersion)
            person = person_id_from(newest.value)
            new_persons.add(person)
        if person is not None and create:
            for k in keys:
                if k not in known:
                    new_aliases[k] = person
        result.append(person)
    if create and new_aliases:
        _insert_ignore(conn, P, [{"id": pid} for pid in sorted(new_persons)], ["id"])
        _insert_ignore(
            conn, PP,
            [{"key_version": v, "pseudonym": s, "person_id": pid} for (v, s), pid in new_aliases.items()],
            ["key_version", "pseudonym"],
        )
    return result


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        stmt: Any = pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    else:
        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)
    for chunk in _chunks(rows):
        conn.execute(stmt, list(chunk))


def _live_hashes(conn: Connection, provider: str, record_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(record_ids):
        rows = conn.execute(
            select(T.c.record_id, T.c.content_hash).where(
                and_(T.c.provider_agb == provider, T.c.record_id.in_(list(chunk)))
            )
        )
        found.update({r: h for r, h in rows})
    return found


def _withdrawn(conn: Connection, provider: str, req: PrepareRequest) -> dict[str, RefusedRecord]:
    """Records whose consent predates a withdrawal by the same person at this provider."""
    consent_based = [t for t in req.trajectories if t.legalBasis == "toestemming"]
    if not consent_based:
        return {}
    has_any = conn.execute(select(W.c.id).where(W.c.provider_agb == provider).limit(1)).first()
    if has_any is None:
        return {}
    persons = resolve_persons(conn, consent_based, create=False)
    ids = {p for p in persons if p is not None}
    if not ids:
        return {}
    rows = conn.execute(
        select(W.c.person_id, W.c.trajectory_ref, W.c.withdrawn_on).where(
            and_(W.c.provider_agb == provider, W.c.person_id.in_(ids))
        )
    ).all()
    refused: dict[str, RefusedRecord] = {}
    for t, person in zip(consent_based, persons, strict=True):
        for pid, ref, on in rows:
            if pid != person or (ref is not None and ref != t.trajectoryRef):
                continue
            if t.consentOn is None or t.consentOn <= on:
                refused[t.recordId] = RefusedRecord(
                    recordId=t.recordId,
                    code="consent-withdrawn",
                    reason="Consent for this client was withdrawn; deliver again only with consent "
                    "given after the withdrawal or under a legal obligation.",
                )
    return refused


def prepare(engine: Engine, req: PrepareRequest, now: dt.datetime, raw: bytes | None = None) -> BatchOutcome:
    """Classify and stage a batch (idempotent; see module docstring).

    ``raw`` is the request body as received; staging it as-is avoids re-encoding.
    """
    digest = payload_hash(req)
    with engine.begin() as conn:
        row = conn.execute(
            select(B.c.payload_hash, B.c.state, B.c.outcome).where(
                and_(B.c.provider_agb == req.providerAgb, B.c.batch_id == req.batchId)
            )
        ).first()
        if row is not None and row.state == "committed":
            if row.payload_hash != digest:
                raise BatchConflict("This batchId was delivered before with different records.")
            return BatchOutcome.model_validate(row.outcome)
        live = _live_hashes(conn, req.providerAgb, [t.recordId for t in req.trajectories])
        refused = _withdrawn(conn, req.providerAgb, req)
        accepted: list[str] = []
        duplicates: list[str] = []
        corrections: list[str] = []
        for t in req.trajectories:
            if t.recordId in refused:
                continue
            old = live.get(t.recordId)
            if old is None:
                accepted.append(t.recordId)
            elif old == t.contentHash:
                duplicates.append(t.recordId)
            else:
                corrections.append(t.recordId)
        outcome = BatchOutcome(
            batchId=req.batchId, state="prepared", accepted=accepted, duplicates=duplicates,
            corrections=corrections, refused=list(refused.values()),
        )
        payload = raw if raw is not None else req.model_dump_json().encode()
        PREPARED.put(digest, req)
        values = {
            "payload_hash": digest, "state": "prepared", "outcome": outcome.model_dump(mode="json"),
            "payload": payload, "created_at": now, "committed_at": None,
        }
        if row is None:
            conn.execute(insert(B).values(provider_agb=req.providerAgb, batch_id=req.batchId, **values))
        else:
            conn.execute(
                update(B)
                .where(and_(B.c.provider_agb == req.providerAgb, B.c.batch_id == req.batchId))
                .values(**values)
            )
    return outcome


def _rows(t: WireTrajectory, provider: str, person: int, batch_id: str, now: dt.datetime) -> dict[str, Any]:
    newest = max(t.pseudonyms, key=lambda p: p.keyVersion)
    return {
        "provider_agb": provider, "record_id": t.recordId, "content_hash": t.contentHash,
        "person_id": person, "key_version": newest.keyVersion, "bsn_known": t.bsnKnown,
        "trajectory_ref": t.trajectoryRef, "pc4": t.pc4, "gemeente": t.gemeente,
        "age_at_end": t.ageAtEnd, "age_band": t.ageBand, "sector": t.sector,
        "freely_accessible": t.freelyAccessible, "hulpvorm": t.hulpvorm, "referrer": t.referrer,
        "started_in_crisis": t.startedInCrisis, "start_date": t.startDate, "end_date": t.endDate,
        "period": t.period, "termination_reason": t.terminationReason, "legal_basis": t.legalBasis,
        "consent_by": t.consentBy, "batch_id": batch_id, "received_at": now,
    }


def commit(engine: Engine, provider: str, batch_id: str, now: dt.datetime) -> BatchOutcome:
    """Apply a prepared batch in one transaction; a committed batch is returned as it was."""
    with engine.begin() as conn:
        row = conn.execute(
            select(B.c.state, B.c.outcome, B.c.payload, B.c.payload_hash).where(
                and_(B.c.provider_agb == provider, B.c.batch_id == batch_id)
            )
        ).first()
        if row is None:
            raise BatchNotFound(batch_id)
        outcome = BatchOutcome.model_validate(row.outcome)
        if row.state == "committed":
            return outcome
        if conn.dialect.name == "postgresql":
            # Serialise commits of one provider so a concurrent batch cannot slip between check and write.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (provider,))
        wanted = set(outcome.accepted) | set(outcome.corrections)
        staged = PREPARED.pop(provider, batch_id, row.payload_hash) or PrepareRequest.model_validate_json(
            row.payload or b"{}"
        )
        trajectories = [t for t in staged.trajectories if t.recordId in wanted]
        live = _live_hashes(conn, provider, [t.recordId for t in trajectories])
        accepted = set(outcome.accepted)
        for t in trajectories:
            if t.recordId in accepted and t.recordId in live:
                raise BatchConflict("A record of this batch was stored by another batch meanwhile.")
        corrected = [t.recordId for t in trajectories if t.recordId in live]
        periods = {t.period for t in trajectories}
        for chunk in _chunks(corrected):
            old_periods = conn.execute(
                select(T.c.period).where(and_(T.c.provider_agb == provider, T.c.record_id.in_(list(chunk))))
            ).scalars()
            periods.update(old_periods)
            for table in (G, M, T):
                conn.execute(
                    delete(table).where(and_(table.c.provider_agb == provider, table.c.record_id.in_(list(chunk))))
                )
        persons = resolve_persons(conn, trajectories, create=True)
        t_rows: list[dict[str, Any]] = []
        m_rows: list[dict[str, Any]] = []
        g_rows: list[dict[str, Any]] = []
        for t, person in zip(trajectories, persons, strict=True):
            assert person is not None
            t_rows.append(_rows(t, provider, person, batch_id, now))
            for m in t.measurements:
                m_rows.append({
                    "provider_agb": provider, "record_id": t.recordId, "informant": m.informant,
                    "satisfaction": m.satisfaction, "without_help": m.withoutHelp,
                    "problem_change": m.problemChange, "goal_overall": m.goalOverall, "period": t.period,
                })
                for i, score in enumerate(m.goals, start=1):
                    g_rows.append({
                        "provider_agb": provider, "record_id": t.recordId, "informant": m.informant,
                        "goal_index": i, "score": score, "period": t.period,
                    })
        for table, rows in ((T, t_rows), (M, m_rows), (G, g_rows)):
            if rows:
                columns = list(rows[0])
                bulk_insert(conn, table.name, columns, [tuple(r[c] for c in columns) for r in rows])
        if periods:
            mark_dirty(conn, periods)  # stale figures, in the same transaction
        committed = outcome.model_copy(update={"state": "committed"})
        conn.execute(
            update(B)
            .where(and_(B.c.provider_agb == provider, B.c.batch_id == batch_id))
            .values(state="committed", outcome=committed.model_dump(mode="json"), payload=None, committed_at=now)
        )
    return committed


def withdraw(engine: Engine, req: WithdrawalRequest) -> WithdrawalOutcome:
    """Remove a person's trajectories at one provider (optionally one trajectory) and remember it."""
    with engine.begin() as conn:
        pairs = {(p.keyVersion, p.value) for p in req.pseudonyms}
        known = _existing_persons(conn, pairs)
        person = next(iter(known.values()), None)
        if person is None:
            newest = max(req.pseudonyms, key=lambda p: p.keyVersion)
            person = person_id_from(newest.value)
        cond = and_(T.c.provider_agb == req.providerAgb, T.c.person_id == person)
        if req.trajectoryRef:
            cond = and_(cond, T.c.trajectory_ref == req.trajectoryRef)
        hits = conn.execute(select(T.c.record_id, T.c.period).where(cond)).all()
        record_ids = [r for r, _ in hits]
        periods = {p for _, p in hits}
        for chunk in _chunks(record_ids):
            for table in (G, M, T):
                conn.execute(
                    delete(table).where(
                        and_(table.c.provider_agb == req.providerAgb, table.c.record_id.in_(list(chunk)))
                    )
                )
        conn.execute(
            insert(W).values(
                provider_agb=req.providerAgb, person_id=person, trajectory_ref=req.trajectoryRef,
                withdrawn_on=req.withdrawnOn, removed=len(record_ids),
            )
        )
        if periods:
            mark_dirty(conn, periods)  # stale figures, in the same transaction
    return WithdrawalOutcome(removed=len(record_ids), recordIds=sorted(record_ids), periods=sorted(periods))


def existing_keys(conn: Connection, provider: str, ids: list[str]) -> set[tuple[str, str]]:
    """(provider, recordId) pairs already stored (used by tests and diagnostics)."""
    rows = conn.execute(
        select(T.c.provider_agb, T.c.record_id).where(
            tuple_(T.c.provider_agb, T.c.record_id).in_([(provider, i) for i in ids])
        )
    )
    return {(p, r) for p, r in rows}
