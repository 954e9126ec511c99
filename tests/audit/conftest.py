"""Fixtures of the audit log tests: a store per backend, an app, and event factories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.audit.app import create_app
from services.audit.store import AuditStore, make_audit_engine
from ttp.audit_events import AuditEvent
from ttp.checkpoint import CheckpointSigner, load_private_key, load_public_key
from ttp.db import migrate
from ttp.pki import sample_parties
from ttp.registry import load_yaml
from ttp.settings import Settings

INGEST_OIN = "00000099500000000001"
#: The dev provider OIN of each dev AGB: an entry about a provider names that provider as actor.
PROVIDER_OINS = {p.codes["agb"]: p.oin for p in sample_parties() if p.role == "provider"}


def oin_of(pki: Path, slug: str) -> str:
    return next(p.oin for p in load_yaml(pki / "parties.yaml") if p.slug == slug)


def events(
    n: int,
    tag: str,
    *,
    provider: str = "98000001",
    kind: str = "record-accepted",
    period: str = "2026-H1",
    keyed: bool = True,
    **subject: Any,
) -> list[AuditEvent]:
    """``n`` record events with distinct record ids (and idempotency keys unless ``keyed=False``).

    The actor is the provider the events are about, as ingest would append them.
    """
    return [
        AuditEvent(
            kind=kind,
            actorOin=PROVIDER_OINS.get(provider, "00000099100000000001"),
            subject={"provider": provider, "recordId": f"{tag}-{i}", "contentHash": f"{i:064x}",
                     "contentKeyVersion": 1,
                     "legalBasis": "wettelijke-verplichting", "consent": None, "period": period,
                     **subject},
            idempotencyKey=f"{kind}:{tag}:{i}" if keyed else None,
        )
        for i in range(n)
    ]


def open_store(url: str, pki: Path) -> AuditStore:
    """A store on an already migrated database, as a second process would open it."""
    return AuditStore(make_audit_engine(url), CheckpointSigner(load_private_key(pki / "audit-log.key")))


@pytest.fixture
def store(db_url: str, dev_pki: Path) -> Iterator[AuditStore]:
    migrate("audit", db_url)
    s = open_store(db_url, dev_pki)
    s.ensure_head()
    yield s
    s.engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path, dev_pki: Path) -> Iterator[AuditStore]:
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    migrate("audit", url)
    s = open_store(url, dev_pki)
    s.ensure_head()
    yield s
    s.engine.dispose()


@pytest.fixture
def public_key(dev_pki: Path) -> Any:
    return load_public_key(dev_pki / "audit-log.pub")


def app_settings(tmp_path: Path, pki: Path, url: str | None = None) -> Settings:
    return Settings(home=tmp_path, pki_dir=pki, audit_database_url=url or "")


@pytest.fixture
def running(tmp_path: Path, dev_pki: Path) -> Iterator[TestClient]:
    """The audit app on SQLite with its lifespan running; ``.portal`` runs code in its loop."""
    with TestClient(create_app(app_settings(tmp_path, dev_pki))) as client:
        yield client


@pytest.fixture
def audit_app(running: TestClient) -> FastAPI:
    app: FastAPI = running.app  # type: ignore[assignment]
    return app


@pytest.fixture
def audit_app_db(tmp_path: Path, dev_pki: Path, db_url: str) -> Iterator[FastAPI]:
    """The audit app on each backend."""
    app = create_app(app_settings(tmp_path, dev_pki, db_url))
    with TestClient(app):
        yield app
