"""The Alembic environment and revisions of reviewflow's SQL schema.

Users never run Alembic by hand: :func:`reviewflow.store.sql.upgrade` (and the
``reviewflow db upgrade URL`` command) builds the configuration in code and
runs these revisions. Each revision is frozen once released: it spells out its
own tables instead of importing :mod:`reviewflow.store._schema`.
"""
