"""Trajectory rows written straight into a migrated aggregate store, for exact tests.

Indicator tests need full control over every field of every row, so they skip
ingest and pseudonymise and insert minimised rows as the store holds them.
Also a generator of many realistic rows (``synthetic_rows``) for the
disclosure tests, built on ``ttp.synthetic`` so the data look like production.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, Table, insert

from services.aggregate.models import GoalScore, Measurement, Person, Trajectory
from ttp.db import make_engine, migrate
from ttp.periods import age_at, age_band, period_of


def store_engine(url: str) -> Engine:
    """A migrated aggregate store."""
    migrate("aggregate", url)
    return make_engine(url)


@dataclass
class M:
    """One informant's answers."""

    informant: str = "jeugdige"
    satisfaction: int | None = None
    without_help: int | None = None
    problem_change: str | None = None
    goal_overall: int | None = None
    goals: Sequence[int] = ()


@dataclass
class Row:
    """One stored trajectory with sensible defaults (a 14-year-old, ambulant, ended per plan)."""

    record_id: str
    person: int
    end: dt.date
    start: dt.date | None = None
    provider: str = "98000001"
    gemeente: str = "GM0363"
    pc4: str = "1011"
    age: int = 14
    sector: str = "jeugdhulp"
    free: bool = False
    hulpvorm: str = "02"
    reason: str = "01"
    bsn_known: bool = True
    unborn: bool = False
    measurements: list[M] = field(default_factory=list)


def _trajectory(row: Row) -> dict[str, Any]:
    start = row.start or row.end - dt.timedelta(days=120)
    return {
        "provider_agb": row.provider, "record_id": row.record_id,
        "content_hash": hashlib.sha256(row.record_id.encode()).hexdigest(),
        "person_id": row.person, "key_version": 1, "bsn_known": row.bsn_known, "unborn": row.unborn,
        "trajectory_ref": f"T-{row.record_id}", "pc4": row.pc4, "gemeente": row.gemeente,
        "age_at_end": row.age, "age_band": age_band(row.age), "sector": row.sector,
        "freely_accessible": row.free, "hulpvorm": row.hulpvorm, "referrer": "01",
        "started_in_crisis": False, "start_date": start, "end_date": row.end,
        "period": period_of(row.end), "termination_reason": row.reason,
        "legal_basis": "wettelijke-verplichting", "consent_by": None, "batch_id": "test",
        "received_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


def insert_rows(engine: Engine, rows: Iterable[Row]) -> None:
    """Insert trajectories with their measurements and goal scores (and their persons)."""
    rows = list(rows)
    t_rows = [_trajectory(r) for r in rows]
    m_rows: list[dict[str, Any]] = []
    g_rows: list[dict[str, Any]] = []
    for r in rows:
        for m in r.measurements:
            m_rows.append({
                "provider_agb": r.provider, "record_id": r.record_id, "informant": m.informant,
                "satisfaction": m.satisfaction, "without_help": m.without_help,
                "problem_change": m.problem_change, "goal_overall": m.goal_overall,
                "period": period_of(r.end),
            })
            g_rows += [
                {"provider_agb": r.provider, "record_id": r.record_id, "informant": m.informant,
                 "goal_index": i, "score": s, "period": period_of(r.end)}
                for i, s in enumerate(m.goals, start=1)
            ]
    persons = sorted({r.person for r in rows})
    with engine.begin() as conn:
        if persons:
            person = cast(Table, Person.__table__)
            existing = set(conn.execute(person.select()).scalars())
            new = [{"id": p} for p in persons if p not in existing]
            if new:
                conn.execute(insert(person), new)
        for model, values in ((Trajectory, t_rows), (Measurement, m_rows), (GoalScore, g_rows)):
            table = cast(Table, model.__table__)
            for i in range(0, len(values), 5000):
                if values[i : i + 5000]:
                    conn.execute(insert(table), values[i : i + 5000])


def synthetic_rows(
    count: int, *, seed: int, period: str, providers: Sequence[str] | None = None,
    today: dt.date | None = None,
) -> list[Row]:
    """Realistic rows: ``ttp.synthetic`` records, minimised as ingest would."""
    from ttp.synthetic import SyntheticConfig, generate

    cfg = SyntheticConfig(records=count, seed=seed, period=period, today=today or dt.date(2027, 3, 1))
    if providers:
        cfg = dataclasses.replace(cfg, providers=tuple(providers))
    persons: dict[str, int] = {}
    out: list[Row] = []
    for rec, _ in generate(cfg):
        known = rec["bsn"] not in ("000000000", "999999999")
        who = rec["bsn"] if known else f"{rec['gender']}{rec['birthDate']}{rec['postcode']}"
        person = persons.setdefault(who, len(persons) + 1)
        end = dt.date.fromisoformat(rec["endDate"])
        age = age_at(dt.date.fromisoformat(rec["birthDate"]), end)
        ms = []
        for m in rec.get("measurements", []):
            goals = m.get("goalAttainment") or {}
            ms.append(M(m["informant"], m.get("satisfaction"), m.get("withoutHelp"),
                        m.get("problemChange"), goals.get("overall"), tuple(goals.get("perGoal", ()))))
        out.append(Row(
            record_id=rec["recordId"], person=person, end=end,
            start=dt.date.fromisoformat(rec["startDate"]), provider=rec["providerAgb"],
            gemeente=rec["gemeente"], pc4=rec["postcode"][:4], age=age, sector=rec["sector"],
            free=rec["freelyAccessible"], hulpvorm=rec["hulpvorm"], reason=rec["terminationReason"],
            bsn_known=known, unborn=rec["bsn"] == "999999999", measurements=ms,
        ))
    return out


#: A few care types with rough national frequencies (sector, free access, hulpvorm, weight).
CARE_MIX: tuple[tuple[str, bool, str, float], ...] = (
    ("jeugdhulp", True, "01", 22), ("jeugdhulp", True, "02", 12), ("jeugdhulp", False, "02", 30),
    ("jeugdhulp", False, "04", 12), ("jeugdhulp", False, "11", 6), ("jeugdhulp", False, "12", 4),
    ("jeugdbescherming", False, "04", 6), ("jeugdreclassering", False, "04", 3),
    ("jeugdhulp", False, "13", 1),
)


def dense_rows(count: int, *, seed: int, period: str, pc4s: Mapping[str, Sequence[str]],
               providers: Sequence[str] = ("98000001", "98000002", "98000003", "98000004"),
               restart_share: float = 0.2) -> list[Row]:
    """Many trajectories in a few gemeenten and PC4 areas: realistic cell sizes in a small store.

    Some people start again after their trajectory (at any provider), so 3.2 has
    new starts to find; about half have no measurement at all.
    """
    from ttp.periods import period_bounds

    rng = random.Random(seed)
    first, last = period_bounds(period)
    places = [(g, p) for g, ps in pc4s.items() for p in ps]
    weights = [w for *_, w in CARE_MIX]
    rows: list[Row] = []
    for i in range(count):
        gemeente, pc4 = rng.choice(places)
        sector, free, hulpvorm, _ = rng.choices(CARE_MIX, weights=weights)[0]
        age = rng.randint(12 if sector == "jeugdreclassering" else 0, 17)
        end = first + dt.timedelta(days=rng.randint(0, (last - first).days))
        reason = rng.choices(("01", "02", "03", "04", "05"), weights=(64, 14, 9, 4, 9))[0]
        measurements = []
        if rng.random() < 0.5:
            informants = ["ouder"] if age < 12 else ["jeugdige"] if age >= 16 else ["jeugdige", "ouder"]
            for who in informants:
                measurements.append(M(
                    who, satisfaction=rng.randint(3, 10), without_help=rng.randint(1, 4),
                    problem_change=None if free else rng.choice(
                        ("sterke-verbetering", "matige-verbetering", "stabilisatie")),
                    goal_overall=None if free else rng.choice((-1, 0, 1, 2)),
                ))
        rows.append(Row(f"d{seed}-{i}", 10_000 * seed + i, end, provider=rng.choice(providers),
                        gemeente=gemeente, pc4=pc4, age=age, sector=sector, free=free,
                        hulpvorm=hulpvorm, reason=reason, measurements=measurements))
        if rng.random() < restart_share:
            start = end + dt.timedelta(days=rng.randint(1, 300))
            rows.append(Row(f"d{seed}-{i}-r", 10_000 * seed + i, start + dt.timedelta(days=90),
                            start=start, provider=rng.choice(providers), gemeente=gemeente, pc4=pc4,
                            age=min(age + 1, 23), sector=sector, free=free, hulpvorm=hulpvorm))
    return rows
