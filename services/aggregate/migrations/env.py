"""Alembic environment of the aggregate service's trajectory store."""

from services.aggregate import models  # noqa: F401  (registers tables)
from services.aggregate.models import Base
from ttp.migration_env import run_migrations

try:  # tables added by later modules register themselves on the same metadata
    from services.aggregate import aggregate_models  # noqa: F401
except ImportError:  # pragma: no cover - module not present in early revisions
    pass

run_migrations(Base.metadata)
