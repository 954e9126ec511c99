"""Alembic environment of the audit service: its own database, its own tables."""

from services.audit.models import Base
from ttp.migration_env import run_migrations

run_migrations(Base.metadata)
