"""Alembic environment of the aggregate service's trajectory store."""

import contextlib

from services.aggregate import models  # noqa: F401  (registers tables)
from services.aggregate.models import Base
from ttp.migration_env import run_migrations

with contextlib.suppress(ImportError):  # tables of the indicator cache, once that module exists
    from services.aggregate import aggregate_models  # noqa: F401

run_migrations(Base.metadata)
