"""Persistence: SQLModel tables, the async engine, query functions and Alembic migrations."""
