"""The database base and the core tables, shared by app/ and exceptions_queue/ (no imports of ours)."""
