"""The SQLite backend: a durable store in one file, on the standard library's sqlite3.

Served on the bare install: ``sqlite:///relative/path.db``,
``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``.
"""
