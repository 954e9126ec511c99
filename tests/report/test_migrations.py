"""The report store's Alembic migrations create exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.report.models import Base
from ttp.db import make_engine, migrate


def test_migrations_match_the_models(db_url: str) -> None:
    migrate("report", db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()
