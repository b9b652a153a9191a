"""Alembic revisions, oldest first: ``0001`` core tables, ``0002`` delivery tables."""
