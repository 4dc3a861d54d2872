"""Imports every module that defines tables, so Base.metadata knows them all.

Alembic's env.py and the schema tests import this; add a line for each new
models module.
"""

import exceptions_queue.tables  # noqa: F401
import storage.tables  # noqa: F401
