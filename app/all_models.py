"""Imports every module that defines tables, so Base.metadata knows them all.

Alembic's env.py and the schema tests import this; add a line for each new
models module.
"""

import app.alerting.models
import app.drift.models
import app.models  # noqa: F401
import exceptions_queue.models  # noqa: F401
