"""The body of every service's Alembic ``env.py``: online migrations only."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData

from ttp.db import make_engine


def run_migrations(target_metadata: MetaData) -> None:
    """Run migrations against the URL in the Alembic config."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by ttp.db.alembic_config"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
