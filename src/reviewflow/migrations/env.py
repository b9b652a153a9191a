"""Run reviewflow's migrations on the connection that :func:`reviewflow.store.sql.upgrade` passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from reviewflow.store._schema import VERSION_TABLE, metadata


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:  # run from the alembic command line with sqlalchemy.url set
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            context.configure(
                connection=conn, target_metadata=metadata, version_table=VERSION_TABLE,
            )
            with context.begin_transaction():
                context.run_migrations()
        engine.dispose()
        return
    context.configure(
        connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
