"""``/v1/ready`` says the database is ok only when it takes a write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from services.report.app import create_app
from tests.helpers.asgi import party_client
from tests.report.conftest import RecordingSink
from tests.report.factory import standard_figures
from ttp.db import make_engine
from ttp.settings import Settings


@pytest.fixture
def report_app(db_url: str, dev_pki: Path, tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(Settings(home=tmp_path, pki_dir=dev_pki, report_database_url=db_url),
                     figures=standard_figures())
    app.state.audit_sink = RecordingSink()
    with TestClient(app):
        yield app


def read_only_engine(db_url: str) -> Engine:
    """The same database as a service sees it after its disk or server went read-only."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return make_engine(f"sqlite:///file:{url.database}?mode=ro&uri=true")
    admin = make_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on')
    admin.dispose()
    return make_engine(db_url)


def test_ready_answers_503_while_the_database_cannot_be_written(report_app: FastAPI, db_url: str,
                                                                dev_pki: Path) -> None:
    operator = party_client(report_app, dev_pki, "operator")
    res = operator.get("/v1/ready")
    assert res.status_code == 200 and res.json()["checks"] == {"database": "ok"}
    writable = report_app.state.engine
    report_app.state.engine = read_only_engine(db_url)
    try:
        # negative control: the old probe, a SELECT 1, still succeeds on this database
        with report_app.state.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        res = operator.get("/v1/ready")
        assert res.status_code == 503, res.text
        assert res.json()["detail"] == "Not ready: database"
        assert res.headers["retry-after"]
    finally:
        report_app.state.engine.dispose()
        report_app.state.engine = writable
        if make_url(db_url).get_backend_name() != "sqlite":
            admin = make_engine(db_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql("SET default_transaction_read_only = off")
                conn.exec_driver_sql(f'ALTER DATABASE "{make_url(db_url).database}" '
                                     "SET default_transaction_read_only = off")
            admin.dispose()


def test_the_probe_changes_nothing(report_app: FastAPI, dev_pki: Path) -> None:
    operator = party_client(report_app, dev_pki, "operator")
    with report_app.state.engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    for _ in range(3):
        assert operator.get("/v1/ready").status_code == 200
    with report_app.state.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == version
