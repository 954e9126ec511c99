"""Alembic environment of the report service's store (annotations, shares, disclosures)."""

from services.report.models import Base
from ttp.migration_env import run_migrations

run_migrations(Base.metadata)
