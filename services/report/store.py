"""Database operations of the report service: annotations, shares, disclosures.

Plain synchronous SQLAlchemy Core, called from worker threads. Functions that
change state take a ``Connection`` inside a transaction the caller owns, so
the route can append the audit event before it commits: a share or an
annotation becomes visible only once its audit entry is durable, and if the
audit log cannot take it the change is rolled back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.report.models import Annotation, DisclosedSnapshot, Disclosure, Share
from services.report.schemas import AnnotationIn, AnnotationOut, DisclosedVersion


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# --- annotations ---------------------------------------------------------------------------

_TEXTS = ("story", "recognition", "explanation", "appraisal", "needs")


def load_annotations(engine: Engine, agb: str, period: str) -> list[AnnotationOut]:
    with engine.connect() as conn:
        return _annotations(conn, agb, period)


def _annotations(conn: Connection, agb: str, period: str) -> list[AnnotationOut]:
    rows = conn.execute(
        select(Annotation.__table__)
        .where(Annotation.provider_agb == agb, Annotation.period == period)
        .order_by(Annotation.indicator)
    ).mappings()
    return [
        AnnotationOut.model_construct(
            indicator=r["indicator"], updatedAt=_utc(r["updated_at"]), **{k: r[k] for k in _TEXTS}
        )
        for r in rows
    ]


def replace_annotations(
    conn: Connection, agb: str, period: str, items: list[AnnotationIn], oin: str, now: dt.datetime
) -> tuple[list[AnnotationOut], list[str]]:
    """Make ``items`` the period's annotations; returns them and the indicators that changed."""
    current = {a.indicator: a for a in _annotations(conn, agb, period)}
    wanted = {a.indicator: a for a in items}
    changed: list[str] = []
    for indicator in sorted(set(current) | set(wanted)):
        old, new = current.get(indicator), wanted.get(indicator)
        if new is None:
            conn.execute(delete(Annotation).where(
                Annotation.provider_agb == agb, Annotation.period == period,
                Annotation.indicator == indicator))
            changed.append(indicator)
        elif old is None:
            conn.execute(insert(Annotation).values(
                provider_agb=agb, period=period, indicator=indicator, updated_at=now,
                updated_by_oin=oin, **new.texts()))
            changed.append(indicator)
        elif old.texts() != new.texts():
            conn.execute(update(Annotation).where(
                Annotation.provider_agb == agb, Annotation.period == period,
                Annotation.indicator == indicator,
            ).values(updated_at=now, updated_by_oin=oin, **new.texts()))
            changed.append(indicator)
    return _annotations(conn, agb, period), changed


# --- shares --------------------------------------------------------------------------------


def _share_rows(conn: Connection, *where: Any) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(Share.__table__).where(*where)
        .order_by(Share.period, Share.provider_agb, Share.gemeente_code)
    ).mappings()
    out = []
    for r in rows:
        row = dict(r)
        for key in ("first_granted_at", "granted_at", "revoked_at"):
            if row[key] is not None:
                row[key] = _utc(row[key])
        out.append(row)
    return out


def active_share(engine: Engine, agb: str, period: str, gemeente: str) -> bool:
    """May ``gemeente`` read the shareable report of ``agb`` for ``period`` right now?"""
    with engine.connect() as conn:
        found = conn.execute(
            select(Share.provider_agb).where(
                Share.provider_agb == agb, Share.period == period, Share.gemeente_code == gemeente,
                Share.revoked_at.is_(None))
        ).first()
    return found is not None


def ever_shared(engine: Engine, agb: str, period: str) -> bool:
    """Has the shareable report of this period ever been shared with anyone?"""
    with engine.connect() as conn:
        found = conn.execute(
            select(Share.provider_agb).where(Share.provider_agb == agb, Share.period == period)
        ).first()
    return found is not None


def grant_share(
    conn: Connection, agb: str, period: str, gemeente: str, oin: str, now: dt.datetime
) -> tuple[dict[str, Any], bool]:
    """Share (or re-share) with ``gemeente``; returns the row and whether anything changed."""
    key = (Share.provider_agb == agb, Share.period == period, Share.gemeente_code == gemeente)
    rows = _share_rows(conn, *key)
    if rows and rows[0]["revoked_at"] is None:
        return rows[0], False
    if rows:
        conn.execute(update(Share).where(*key).values(
            granted_at=now, granted_by_oin=oin, revoked_at=None, revoked_by_oin=None))
    else:
        conn.execute(insert(Share).values(
            provider_agb=agb, period=period, gemeente_code=gemeente, first_granted_at=now,
            granted_at=now, granted_by_oin=oin))
    return _share_rows(conn, *key)[0], True


def revoke_share(
    conn: Connection, agb: str, period: str, gemeente: str, oin: str, now: dt.datetime
) -> dict[str, Any] | None:
    """Revoke an active share; None when there is none."""
    key = (Share.provider_agb == agb, Share.period == period, Share.gemeente_code == gemeente)
    result = conn.execute(
        update(Share).where(*key, Share.revoked_at.is_(None)).values(revoked_at=now, revoked_by_oin=oin)
    )
    if result.rowcount == 0:
        return None
    return _share_rows(conn, *key)[0]


def provider_shares(engine: Engine, agb: str, period: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return _share_rows(conn, Share.provider_agb == agb, Share.period == period)


def gemeente_shares(engine: Engine, gemeente: str, period: str | None) -> list[dict[str, Any]]:
    """What is shared with ``gemeente`` now (revoked shares are not listed to it)."""
    where = [Share.gemeente_code == gemeente, Share.revoked_at.is_(None)]
    if period:
        where.append(Share.period == period)
    with engine.connect() as conn:
        return _share_rows(conn, *where)


def share_records(
    engine: Engine, *, gemeente: str | None = None, agb: str | None = None, period: str | None = None
) -> list[tuple[dict[str, Any], list[DisclosedVersion]]]:
    """Every share ever made (revoked ones too), each with the figure versions it disclosed."""
    where = []
    if gemeente:
        where.append(Share.gemeente_code == gemeente)
    if agb:
        where.append(Share.provider_agb == agb)
    if period:
        where.append(Share.period == period)
    with engine.connect() as conn:
        rows = _share_rows(conn, *where)
        dwhere = [getattr(Disclosure, c) == v for c, v in (
            ("gemeente_code", gemeente), ("provider_agb", agb), ("period", period)) if v]
        served: dict[tuple[str, str, str], list[DisclosedVersion]] = {}
        for d in conn.execute(
            select(Disclosure.__table__).where(*dwhere).order_by(Disclosure.first_served_at)
        ).mappings():
            href = (f"/v1/providers/{d['provider_agb']}/reports/{d['period']}/deelbaar/snapshots/"
                    f"{d['data_version']}")
            served.setdefault((d["provider_agb"], d["period"], d["gemeente_code"]), []).append(
                DisclosedVersion(dataVersion=d["data_version"],
                                 firstServedAt=_utc(d["first_served_at"]), href=href))
    return [(r, served.get((r["provider_agb"], r["period"], r["gemeente_code"]), [])) for r in rows]


# --- disclosures ---------------------------------------------------------------------------


def record_disclosure(
    engine: Engine, agb: str, period: str, gemeente: str, version: str,
    figures: dict[str, Any], now: dt.datetime,
) -> None:
    """Remember that ``gemeente`` was served this version, with the figures as served.

    Idempotent and safe under concurrent readers: ``ON CONFLICT DO NOTHING`` (both
    SQLite and PostgreSQL), because a second insert states the same fact.
    """
    dialect = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    with engine.begin() as conn:
        conn.execute(dialect(DisclosedSnapshot).values(
            provider_agb=agb, period=period, data_version=version, figures=figures, created_at=now,
        ).on_conflict_do_nothing())
        conn.execute(dialect(Disclosure).values(
            provider_agb=agb, period=period, gemeente_code=gemeente, data_version=version,
            first_served_at=now,
        ).on_conflict_do_nothing())


def snapshot(engine: Engine, agb: str, period: str, version: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(DisclosedSnapshot.figures).where(
                DisclosedSnapshot.provider_agb == agb, DisclosedSnapshot.period == period,
                DisclosedSnapshot.data_version == version)
        ).first()
    return dict(row[0]) if row is not None else None
