"""Fixtures of the aggregate outcome tests: a store with realistic rows and the app over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from services.aggregate.app import create_app
from tests.aggregate.factory import dense_rows, insert_rows, store_engine
from tests.helpers.asgi import party_client
from ttp.audit_events import AuditEvent
from ttp.settings import Settings

PERIOD = "2026-H1"
PC4S = {
    "GM0363": [f"10{i:02d}" for i in range(11, 23)],
    "GM0599": [f"30{i:02d}" for i in range(11, 19)],
    "GM0344": ["3511", "3512", "3513"],
}


class RecordingSink:
    """An audit sink that keeps what it was given; ``fail`` makes ``append`` raise (the log cannot write)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.fail = False

    async def append(self, events: list[AuditEvent], *, proofs: str = "all") -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("audit log cannot write")
        self.events.extend(events)
        return {"size": len(self.events)}

    def append_soon(self, events: list[AuditEvent]) -> None:
        self.events.extend(events)

    def of(self, kind: str) -> list[AuditEvent]:
        return [e for e in self.events if e.kind == kind]


@dataclass
class AggregateEnv:
    app: FastAPI
    engine: Engine
    sink: RecordingSink
    pki: Path

    def client(self, slug: str | None) -> TestClient:
        return party_client(self.app, self.pki, slug)


@pytest.fixture
def aggregate_env(db_url: str, dev_pki: Path, tmp_path: Path) -> Iterator[AggregateEnv]:
    """The aggregate app over a store holding 1,500 trajectories in three gemeenten."""
    engine = store_engine(db_url)
    insert_rows(engine, dense_rows(1500, seed=1, period=PERIOD, pc4s=PC4S))
    settings = Settings(home=tmp_path, pki_dir=dev_pki, aggregate_database_url=db_url)
    app = create_app(settings)
    sink = RecordingSink()
    app.state.audit_sink = sink
    with TestClient(app):
        yield AggregateEnv(app, engine, sink, dev_pki)
    engine.dispose()
