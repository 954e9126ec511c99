"""Alembic environment of the ingest service's receipt store."""

from services.ingest.receipts import Base
from ttp.migration_env import run_migrations

run_migrations(Base.metadata)
