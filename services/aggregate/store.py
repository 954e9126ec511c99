"""Two-phase delivery into the trajectory store, and two-phase withdrawal.

``prepare`` classifies a batch's records against the live store (new,
duplicate, correction, refused) from their keys alone and remembers the
outcome; ``commit`` receives the rows once ingest has the audit entries
durable, checks they are the ones prepared, and stores them in one
transaction. A resent batch gets its original outcome back, so a retry never
counts twice; a batch prepared but never committed is simply prepared again.
No row is written, not even staged, before its audit entry exists. After
the commit, aggregate appends the batch's ``batch-committed`` entry through an
outbox (``unlogged_commits``), see ``ttp.audit_batches``.

Withdrawals follow the same order: ``prepare_withdrawal`` records which rows
will go, ingest logs them, ``commit_withdrawal`` deletes exactly those.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, delete, insert, select, tuple_, update

from services.aggregate.models import (
    GoalScore,
    Measurement,
    Trajectory,
    TrajectoryBatch,
    Withdrawal,
)
from services.aggregate.persons import existing_persons, newest, person_id_from, resolve_persons
from services.aggregate.recompute import mark_dirty
from services.aggregate.wire import (
    BatchOutcome,
    CommitRequest,
    PrepareRequest,
    RefusedRecord,
    WireKey,
    WireTrajectory,
    WithdrawalOutcome,
    WithdrawalRequest,
)
from ttp.audit_batches import records_digest
from ttp.bulk_write import insert_rows
from ttp.key_lookup import lookup_in

CHUNK = 2000
T = cast(Table, Trajectory.__table__)
M = cast(Table, Measurement.__table__)
G = cast(Table, GoalScore.__table__)
B = cast(Table, TrajectoryBatch.__table__)
W = cast(Table, Withdrawal.__table__)


class BatchConflict(Exception):
    """The batch id was used before with other content, or the store changed under a prepared batch."""


class BatchNotFound(Exception):
    """Commit of a batch that was never prepared."""


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def content_hash_under(t: WireKey, version: int) -> str | None:
    """The record's keyed content hash under key ``version``, or None if it was not sent under it."""
    for digest in t.contentHashes:
        if digest.keyVersion == version:
            return digest.value
    return None


def payload_hash(trajectories: Sequence[WireKey], version: int | None = None) -> str:
    """Identity of a batch's content: its records' ids and keyed content hashes under ``version``, in order.

    ``version`` defaults to the newest key version of the records' hashes. An
    empty string when some record has no hash under ``version``.
    """
    parts: list[str] = []
    for t in trajectories:
        digest = content_hash_under(t, version if version is not None else newest(t.contentHashes).keyVersion)
        if digest is None:
            return ""
        parts.append(f"{t.recordId}\x00{digest}\x01")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def same_payload(stored: str, trajectories: Sequence[WireKey]) -> bool:
    """Are these the records a batch was stored with, under any key version they were hashed with?

    A batch resent after a key rotation carries its hashes under the new and
    the old versions; it is the same batch if they match under any of them.
    """
    if not trajectories:
        return payload_hash(trajectories) == stored
    versions = {d.keyVersion for d in trajectories[0].contentHashes}
    return any(payload_hash(trajectories, v) == stored for v in versions)


def _live_hashes(conn: Connection, provider: str, record_ids: list[str]) -> dict[str, tuple[str, int]]:
    """(content hash, key version) of each of ``record_ids`` this provider has stored (a primary-key range)."""
    rows = lookup_in(conn, T, "record_id", ("content_hash", "key_version"), record_ids,
                     equal={"provider_agb": provider})
    return {record_id: (content_hash, key_version) for record_id, content_hash, key_version in rows}


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


def _absent(conn: Connection, req: PrepareRequest) -> list[str]:
    """Period re-delivery: the provider's stored records of the period that the new delivery leaves out.

    A record the delivery carries but ingest rejected (``keepRecordIds``) is
    not absent: its stored version stays until a valid one replaces it, so a
    typo in a re-delivery never silently drops a trajectory from the figures.
    """
    present = {t.recordId for t in req.trajectories} | set(req.keepRecordIds)
    stored = conn.execute(
        select(T.c.record_id).where(and_(T.c.provider_agb == req.providerAgb, T.c.period == req.replacePeriod))
    ).scalars()
    return sorted(r for r in stored if r not in present)


def prepare(engine: Engine, req: PrepareRequest, now: dt.datetime) -> BatchOutcome:
    """Classify a batch and remember the outcome (idempotent; see module docstring)."""
    digest = payload_hash(req.trajectories)
    with engine.begin() as conn:
        row = conn.execute(
            select(B.c.payload_hash, B.c.state, B.c.outcome).where(
                and_(B.c.provider_agb == req.providerAgb, B.c.batch_id == req.batchId)
            )
        ).first()
        if row is not None and row.state == "committed":
            done = BatchOutcome.model_validate(row.outcome)
            if not same_payload(row.payload_hash, req.trajectories) or done.replacePeriod != req.replacePeriod:
                raise BatchConflict("This batchId was delivered before with different records.")
            return done
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
            elif content_hash_under(t, old[1]) == old[0]:
                # Compared under the key version the row was stored with; a row whose version
                # is retired (no hash under it) counts as a correction: replaced, and logged.
                duplicates.append(t.recordId)
            else:
                corrections.append(t.recordId)
        outcome = BatchOutcome(
            batchId=req.batchId, state="prepared", accepted=accepted, duplicates=duplicates,
            corrections=corrections, refused=list(refused.values()), replacePeriod=req.replacePeriod,
            withdrawn=_absent(conn, req) if req.replacePeriod else [],
        )
        values = {
            "payload_hash": digest, "state": "prepared", "outcome": outcome.model_dump(mode="json"),
            "created_at": now, "committed_at": None,
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


TRAJECTORY_COLUMNS = (
    "provider_agb", "record_id", "content_hash", "person_id", "key_version", "bsn_known", "trajectory_ref", "pc4",
    "gemeente", "age_at_end", "age_band", "sector", "freely_accessible", "hulpvorm", "referrer",
    "started_in_crisis", "start_date", "end_date", "period", "termination_reason", "legal_basis", "consent_by",
    "batch_id", "received_at", "unborn",
)
MEASUREMENT_COLUMNS = ("provider_agb", "record_id", "informant", "satisfaction", "without_help", "problem_change",
                       "goal_overall", "period")
GOAL_COLUMNS = ("provider_agb", "record_id", "informant", "goal_index", "score", "period")


def _row(t: WireTrajectory, provider: str, person: int, batch_id: str, now: dt.datetime) -> tuple[Any, ...]:
    """The ``trajectories`` row of ``t``, in ``TRAJECTORY_COLUMNS`` order."""
    key_version = newest(t.pseudonyms).keyVersion
    content_hash = content_hash_under(t, key_version)
    if content_hash is None:
        raise ValueError(f"record {t.recordId} has no content hash under key version {key_version}")
    return (
        provider, t.recordId, content_hash, person, key_version, t.bsnKnown, t.trajectoryRef, t.pc4, t.gemeente,
        t.ageAtEnd, t.ageBand, t.sector, t.freelyAccessible, t.hulpvorm, t.referrer, t.startedInCrisis,
        t.startDate, t.endDate, t.period, t.terminationReason, t.legalBasis, t.consentBy, batch_id, now,
        t.unborn,
    )


def commit(engine: Engine, provider: str, batch_id: str, req: CommitRequest, now: dt.datetime) -> BatchOutcome:
    """Store a prepared batch's rows in one transaction; a committed batch is returned as it was.

    The rows must be the prepared ones (same record ids and content hashes in
    the same order): the outcome, and the audit entries written from it,
    describe exactly those.
    """
    with engine.begin() as conn:
        row = conn.execute(
            select(B.c.state, B.c.outcome, B.c.payload_hash).where(
                and_(B.c.provider_agb == provider, B.c.batch_id == batch_id)
            )
        ).first()
        if row is None:
            raise BatchNotFound(batch_id)
        outcome = BatchOutcome.model_validate(row.outcome)
        if row.state == "committed":
            return outcome
        if not same_payload(row.payload_hash, req.trajectories):
            raise BatchConflict("The rows sent to commit are not the records this batch was prepared with.")
        if conn.dialect.name == "postgresql":
            # Serialise commits of one provider so a concurrent batch cannot slip between check and write.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(%s))", (provider,))
        wanted = set(outcome.accepted) | set(outcome.corrections)
        trajectories = [t for t in req.trajectories if t.recordId in wanted]
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
        t_rows: list[tuple[Any, ...]] = []
        m_rows: list[tuple[Any, ...]] = []
        g_rows: list[tuple[Any, ...]] = []
        for t, person in zip(trajectories, persons, strict=True):
            assert person is not None
            t_rows.append(_row(t, provider, person, batch_id, now))
            for m in t.measurements:
                m_rows.append((provider, t.recordId, m.informant, m.satisfaction, m.withoutHelp, m.problemChange,
                               m.goalOverall, t.period))
                g_rows.extend((provider, t.recordId, m.informant, i, score, t.period)
                              for i, score in enumerate(m.goals, start=1))
        insert_rows(conn, T, TRAJECTORY_COLUMNS, t_rows)
        insert_rows(conn, M, MEASUREMENT_COLUMNS, m_rows)
        insert_rows(conn, G, GOAL_COLUMNS, g_rows)
        # Period re-delivery: remove exactly the absent records prepared (and audited) before.
        periods.update(remove_records(conn, provider, outcome.withdrawn))
        if periods:
            mark_dirty(conn, periods)  # stale figures, in the same transaction
        committed = outcome.model_copy(update={"state": "committed"})
        # The first content hash is the current key's, as ingest sent it and put in ``batch-received``.
        digest = records_digest((t.recordId, t.contentHashes[0].value) for t in req.trajectories)
        conn.execute(
            update(B)
            .where(and_(B.c.provider_agb == provider, B.c.batch_id == batch_id))
            .values(state="committed", outcome=committed.model_dump(mode="json"), committed_at=now,
                    records_digest=digest)
        )
    return committed


def remove_records(conn: Connection, provider: str, record_ids: Sequence[str]) -> set[str]:
    """Delete a provider's stored records (trajectory, measurements, goal scores); returns their periods.

    The one deletion path for records leaving the store on the provider's
    word: a consent withdrawal and the absent records of a period
    re-delivery. Runs inside the caller's transaction, after the caller's
    audit entries are durable; the caller marks the periods dirty.
    """
    periods: set[str] = set()
    for chunk in _chunks(record_ids):
        ids = list(chunk)
        periods.update(
            conn.execute(
                select(T.c.period).where(and_(T.c.provider_agb == provider, T.c.record_id.in_(ids)))
            ).scalars()
        )
        for table in (G, M, T):
            conn.execute(delete(table).where(and_(table.c.provider_agb == provider, table.c.record_id.in_(ids))))
    return periods


@dataclass(frozen=True)
class CommittedBatch:
    """A committed batch whose ``batch-committed`` log entry is still to be appended (the outbox)."""

    provider: str
    batch_id: str
    records_digest: str
    outcome: BatchOutcome


def unlogged_commits(engine: Engine, provider: str | None = None, batch_id: str | None = None,
                     limit: int = 500) -> list[CommittedBatch]:
    """Committed batches without a durable ``batch-committed`` entry (all, or the one named)."""
    cond = and_(B.c.state == "committed", B.c.commit_logged_at.is_(None), B.c.records_digest.is_not(None))
    if provider is not None and batch_id is not None:
        cond = and_(cond, B.c.provider_agb == provider, B.c.batch_id == batch_id)
    with engine.connect() as conn:
        rows = conn.execute(
            select(B.c.provider_agb, B.c.batch_id, B.c.records_digest, B.c.outcome)
            .where(cond).order_by(B.c.committed_at).limit(limit)
        ).all()
    return [CommittedBatch(p, b, d, BatchOutcome.model_validate(o)) for p, b, d, o in rows]


def mark_commits_logged(engine: Engine, batches: Sequence[CommittedBatch], now: dt.datetime) -> None:
    with engine.begin() as conn:
        for batch in batches:
            conn.execute(
                update(B)
                .where(and_(B.c.provider_agb == batch.provider, B.c.batch_id == batch.batch_id))
                .values(commit_logged_at=now)
            )


class WithdrawalNotFound(Exception):
    """Commit of a withdrawal that was never prepared (for this provider)."""


def _request_hash(req: WithdrawalRequest, person: int | None) -> str:
    """Identity of a withdrawal request: the same request resent is the same withdrawal."""
    if person is not None:
        text = f"person\x00{person}\x00{req.trajectoryRef or ''}\x00{req.withdrawnOn.isoformat()}"
    else:
        text = "records\x00" + "\x00".join(sorted(set(req.recordIds or []))) + f"\x00{req.withdrawnOn.isoformat()}"
    return hashlib.sha256(f"{req.providerAgb}\x00{text}".encode()).hexdigest()


def _withdrawal_outcome(row: Any) -> WithdrawalOutcome:
    record_ids = list(row.record_ids or [])
    return WithdrawalOutcome(withdrawalId=row.withdrawal_id, state=row.state, removed=len(record_ids),
                             recordIds=record_ids, periods=list(row.periods or []))


def prepare_withdrawal(engine: Engine, req: WithdrawalRequest, now: dt.datetime) -> WithdrawalOutcome:
    """Phase one: record which rows the withdrawal removes, delete nothing (idempotent).

    A resend of the same request gets the withdrawal prepared (or committed)
    before, with the same rows, so its log entry is the same and the rows go
    once. A consent withdrawal refuses the person's earlier-consent records
    from the moment it is prepared (see ``_withdrawn``).
    """
    with engine.begin() as conn:
        person: int | None = None
        if req.pseudonyms:
            known = existing_persons(conn, ((p.keyVersion, p.value) for p in req.pseudonyms))
            person = next(iter(known.values()), None)
            if person is None:
                person = person_id_from(newest(req.pseudonyms).value)
        request_hash = _request_hash(req, person)
        row = conn.execute(
            select(W.c.withdrawal_id, W.c.state, W.c.record_ids, W.c.periods)
            .where(and_(W.c.provider_agb == req.providerAgb, W.c.request_hash == request_hash))
        ).first()
        if row is not None:
            return _withdrawal_outcome(row)
        hits: list[tuple[Any, ...]]
        if person is not None:
            cond = and_(T.c.provider_agb == req.providerAgb, T.c.person_id == person)
            if req.trajectoryRef:
                cond = and_(cond, T.c.trajectory_ref == req.trajectoryRef)
            hits = [tuple(r) for r in conn.execute(select(T.c.record_id, T.c.period).where(cond))]
        else:
            wanted = sorted(set(req.recordIds or []))
            hits = list(lookup_in(conn, T, "record_id", ("period",), wanted, equal={"provider_agb": req.providerAgb}))
        record_ids = sorted(r for r, _ in hits)
        periods = sorted({p for _, p in hits})
        withdrawal_id = uuid.uuid4().hex
        conn.execute(
            insert(W).values(
                provider_agb=req.providerAgb, person_id=person, trajectory_ref=req.trajectoryRef,
                withdrawn_on=req.withdrawnOn, removed=len(record_ids), withdrawal_id=withdrawal_id,
                request_hash=request_hash, state="prepared", record_ids=record_ids, periods=periods,
            )
        )
    return WithdrawalOutcome(withdrawalId=withdrawal_id, state="prepared", removed=len(record_ids),
                             recordIds=record_ids, periods=periods)


def commit_withdrawal(engine: Engine, provider: str, withdrawal_id: str, now: dt.datetime) -> WithdrawalOutcome:
    """Phase two, once the log entry naming the rows is durable: delete exactly those rows.

    A committed withdrawal is returned as it was (a resend deletes nothing more).
    """
    with engine.begin() as conn:
        row = conn.execute(
            select(W.c.withdrawal_id, W.c.state, W.c.record_ids, W.c.periods)
            .where(and_(W.c.provider_agb == provider, W.c.withdrawal_id == withdrawal_id))
        ).first()
        if row is None:
            raise WithdrawalNotFound(withdrawal_id)
        outcome = _withdrawal_outcome(row)
        if outcome.state == "committed":
            return outcome
        remove_records(conn, provider, outcome.recordIds)
        conn.execute(
            update(W).where(W.c.withdrawal_id == withdrawal_id).values(state="committed", committed_at=now)
        )
        if outcome.periods:
            mark_dirty(conn, set(outcome.periods))  # stale figures, in the same transaction
    return outcome.model_copy(update={"state": "committed"})


def existing_keys(conn: Connection, provider: str, ids: list[str]) -> set[tuple[str, str]]:
    """(provider, recordId) pairs already stored (used by tests and diagnostics)."""
    rows = conn.execute(
        select(T.c.provider_agb, T.c.record_id).where(
            tuple_(T.c.provider_agb, T.c.record_id).in_([(provider, i) for i in ids])
        )
    )
    return {(p, r) for p, r in rows}
