"""The pseudonymous person register: which pseudonyms belong to one person.

Indicator 3.2 (a new trajectory within a year) links one client's
trajectories across providers, and key rotation must not break that link, so
every pseudonym a person was delivered under, per key version, points at one
surrogate person id. Lookups and inserts go to the driver directly (one
statement per chunk, no per-row SQLAlchemy parameter processing): they run for
every record of every delivery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Connection, Table

from services.aggregate.models import PersonPseudonym
from services.aggregate.wire import WireKey, WirePseudonym
from ttp.key_lookup import lookup_in

PP = cast(Table, PersonPseudonym.__table__)


def person_id_from(pseudonym: str) -> int:
    """A stable 63-bit surrogate id for a new person, derived from its first pseudonym.

    Deriving it (instead of a sequence) lets a whole batch of new persons be
    inserted with one ``executemany`` and no round trip per person.
    """
    return int(pseudonym[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF


def newest(pseudonyms: Sequence[WirePseudonym]) -> WirePseudonym:
    """The pseudonym under the newest key version: the one a new person's id is derived from."""
    if len(pseudonyms) == 1:  # the usual case, between key rotations
        return pseudonyms[0]
    return max(pseudonyms, key=lambda p: p.keyVersion)


def existing_persons(conn: Connection, pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Person id of each (key version, pseudonym) already registered.

    Asked per key version, so each lookup is a range of the primary key
    (key_version, pseudonym): a lookup by pseudonym alone cannot use it and
    scanned the whole register on PostgreSQL, which grew with every delivery.
    """
    by_version: dict[int, set[str]] = {}
    for version, pseudonym in pairs:
        by_version.setdefault(version, set()).add(pseudonym)
    found: dict[tuple[int, str], int] = {}
    for version, wanted in by_version.items():
        rows = lookup_in(conn, PP, "pseudonym", ("person_id",), list(wanted), equal={"key_version": version})
        found.update(((version, pseudonym), person_id) for pseudonym, person_id in rows)
    return found


def _register(conn: Connection, persons: list[int], aliases: list[tuple[int, str, int]]) -> None:
    """Insert new persons and their (key version, pseudonym, person) aliases; existing ones stay.

    ``persons`` may be empty: a known person seen under a new key version
    only gains an alias.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "INSERT INTO persons (id) SELECT unnest(%s::bigint[]) ON CONFLICT DO NOTHING", (persons,)
        )
        conn.exec_driver_sql(
            "INSERT INTO person_pseudonyms (key_version, pseudonym, person_id) "
            "SELECT * FROM unnest(%s::smallint[], %s::varchar[], %s::bigint[]) ON CONFLICT DO NOTHING",
            ([v for v, _, _ in aliases], [s for _, s, _ in aliases], [p for _, _, p in aliases]),
        )
        return
    if persons:
        conn.exec_driver_sql("INSERT INTO persons (id) VALUES (?) ON CONFLICT DO NOTHING", [(p,) for p in persons])
    conn.exec_driver_sql(
        "INSERT INTO person_pseudonyms (key_version, pseudonym, person_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        aliases,
    )


def _first(ids: dict[tuple[int, str], int], keys: list[tuple[int, str]]) -> int | None:
    """The person of the first of ``keys`` in ``ids`` (a plain loop: this runs for every record)."""
    for key in keys:
        person = ids.get(key)
        if person is not None:
            return person
    return None


def resolve_persons(
    conn: Connection, trajectories: Sequence[WireKey], *, create: bool
) -> list[int | None]:
    """Map each trajectory to its person, linking across key versions; optionally create persons."""
    known = existing_persons(conn, ((p.keyVersion, p.value) for t in trajectories for p in t.pseudonyms))
    result: list[int | None] = []
    new_aliases: dict[tuple[int, str], int] = {}
    new_persons: set[int] = set()
    for t in trajectories:
        keys = [(p.keyVersion, p.value) for p in t.pseudonyms]
        person = _first(known, keys)
        if person is None:
            person = _first(new_aliases, keys)
        if person is None and create:
            person = person_id_from(newest(t.pseudonyms).value)
            new_persons.add(person)
        if person is not None and create:
            for k in keys:
                if k not in known:
                    new_aliases[k] = person
        result.append(person)
    if create and new_aliases:
        _register(conn, sorted(new_persons), [(v, s, pid) for (v, s), pid in new_aliases.items()])
    return result
