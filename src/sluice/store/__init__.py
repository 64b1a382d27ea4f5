"""The store: SQLAlchemy tables, the queries written once, and Alembic migrations."""
