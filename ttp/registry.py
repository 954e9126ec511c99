"""The party registry: which OIN is which organisation, in which role.

Seeded from a YAML file (written by ``ttp pki init`` in development, by the
operator in production) into a ``parties`` table in each storing service's
database, and held in memory for the per-request lookup.

A party of role ``service`` also names which TTP service it is (``service:
ingest``); what each service may call and append follows from that name
alone (``ttp.privileges``), so a certificate of the report service can never
do what only ingest may, however the two are registered otherwise. The
service name is kept in memory only: no query of the ``parties`` table needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import yaml
from sqlalchemy import Column, Engine, MetaData, String, Table, delete, insert, select

Role = Literal["provider", "gemeente", "rijk", "auditor", "operator", "service"]
ROLES: tuple[str, ...] = get_args(Role)

#: The TTP's own services. ``portal`` is the web front for people: it calls the
#: others on behalf of a signed-in party (``ttp.relay``).
ServiceName = Literal["ingest", "pseudonymise", "aggregate", "report", "audit", "portal"]
SERVICE_NAMES: tuple[str, ...] = get_args(ServiceName)


@dataclass(frozen=True)
class Party:
    """A registered organisation, as identified by its certificate's OIN."""

    oin: str
    role: str
    name: str
    slug: str = ""
    agb: str | None = None
    gemeente_code: str | None = None
    #: Which TTP service this is (role ``service`` only).
    service: str | None = None
    #: OIN of the service that relayed this party's request (``ttp.relay``); None when it called itself.
    relayed_by: str | None = None


def parties_table(metadata: MetaData) -> Table:
    """Define the ``parties`` table in a service's metadata."""
    return Table(
        "parties",
        metadata,
        Column("oin", String(20), primary_key=True),
        Column("role", String(16), nullable=False),
        Column("name", String(200), nullable=False),
        Column("slug", String(100), nullable=False, default=""),
        Column("agb", String(8), nullable=True, unique=True),
        Column("gemeente_code", String(6), nullable=True, unique=True),
    )


def load_yaml(path: Path) -> list[Party]:
    """Parse a registry file; fails loudly on an unknown role or a malformed OIN."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    parties: list[Party] = []
    for raw in doc.get("parties", []):
        oin = str(raw["oin"])
        role = str(raw["role"])
        if len(oin) != 20 or not oin.isdigit():
            raise ValueError(f"registry: OIN must be 20 digits (party {raw.get('name')!r})")
        if role not in ROLES:
            raise ValueError(f"registry: unknown role {role!r} for OIN {oin}")
        service = str(raw["service"]) if raw.get("service") else None
        if role == "service" and service not in SERVICE_NAMES:
            raise ValueError(f"registry: OIN {oin} has role service but names no known service "
                             f"(service: one of {', '.join(SERVICE_NAMES)})")
        if role != "service" and service is not None:
            raise ValueError(f"registry: OIN {oin} names a service but has role {role!r}")
        parties.append(
            Party(
                oin=oin, role=role, name=str(raw.get("name", "")), slug=str(raw.get("slug", "")),
                agb=str(raw["agb"]) if raw.get("agb") else None,
                gemeente_code=str(raw["gemeenteCode"]) if raw.get("gemeenteCode") else None,
                service=service,
            )
        )
    return parties


class Registry:
    """In-memory view of the registry, for lookups on every request."""

    def __init__(self, parties: list[Party]) -> None:
        self._by_oin = {p.oin: p for p in parties}
        self._by_agb = {p.agb: p for p in parties if p.agb}

    def by_oin(self, oin: str) -> Party | None:
        return self._by_oin.get(oin)

    def by_agb(self, agb: str) -> Party | None:
        return self._by_agb.get(agb)

    def service(self, name: str) -> Party | None:
        """The registered party of TTP service ``name``, if any."""
        return next((p for p in self._by_oin.values() if p.service == name), None)

    def all(self) -> list[Party]:
        return list(self._by_oin.values())

    @classmethod
    def from_yaml(cls, path: Path) -> Registry:
        return cls(load_yaml(path))

    @classmethod
    def seed_and_load(cls, engine: Engine, table: Table, path: Path) -> Registry:
        """Replace the table's rows with the YAML's, then serve lookups from the table.

        The rows read back carry no service name (the table has no column for
        it); it is taken from the YAML just written, by OIN.
        """
        parties = load_yaml(path)
        with engine.begin() as conn:
            conn.execute(delete(table))
            if parties:
                conn.execute(
                    insert(table),
                    [
                        {"oin": p.oin, "role": p.role, "name": p.name, "slug": p.slug,
                         "agb": p.agb, "gemeente_code": p.gemeente_code}
                        for p in parties
                    ],
                )
        with engine.connect() as conn:
            rows = conn.execute(select(table)).mappings().all()
        services = {p.oin: p.service for p in parties}
        return cls([Party(**dict(r), service=services.get(r["oin"])) for r in rows])
