"""Durable storage: SQLite (embedded default, WAL) or PostgreSQL, via SQLAlchemy 2 async."""
