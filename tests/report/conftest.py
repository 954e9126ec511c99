"""Fixtures of the report service tests: the app on both databases with a fake figure
source and a recording audit sink, and clients calling it as each party."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.report.app import create_app
from tests.helpers.asgi import party_client
from tests.report.factory import FakeFigures, standard_figures
from ttp.audit_events import AuditEvent
from ttp.settings import Settings

AGB = "98000001"
PERIOD = "2026-H1"


class RecordingSink:
    """An audit sink that keeps what it was given; ``fail`` makes ``append`` raise."""

    def __init__(self) -> None:
        self.durable: list[AuditEvent] = []
        self.soon: list[AuditEvent] = []
        self.fail = False

    async def append(self, events: list[AuditEvent], *, proofs: str = "all") -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("audit log down")
        self.durable.extend(events)
        return {"size": len(self.durable)}

    def append_soon(self, events: list[AuditEvent]) -> None:
        self.soon.extend(events)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.durable + self.soon]


@dataclass
class ReportEnv:
    app: FastAPI
    sink: RecordingSink
    figures: FakeFigures
    pki: Path

    def client(self, slug: str | None) -> TestClient:
        return party_client(self.app, self.pki, slug)


def make_env(settings: Settings, pki: Path, figures: FakeFigures) -> tuple[FastAPI, RecordingSink]:
    app = create_app(settings, figures=figures)
    sink = RecordingSink()
    app.state.audit_sink = sink
    return app, sink


@pytest.fixture
def report_settings(db_url: str, dev_pki: Path, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, pki_dir=dev_pki, report_database_url=db_url)


@pytest.fixture
def report_env(report_settings: Settings, dev_pki: Path) -> Iterator[ReportEnv]:
    figures = standard_figures(AGB, PERIOD)
    app, sink = make_env(report_settings, dev_pki, figures)
    with TestClient(app):
        yield ReportEnv(app, sink, figures, dev_pki)


@pytest.fixture
def as_party(report_env: ReportEnv) -> Callable[[str | None], TestClient]:
    return report_env.client
