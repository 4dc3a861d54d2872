"""Every table of driftdesk, listed: the metadata Alembic and the schema tests compare.

A table is known to ``Base.metadata`` once its module is imported; this module
names them all (add a domain's tables.py here), so ``metadata`` is complete.
"""

from sqlalchemy import MetaData

from app.alerting import tables as alerting_tables
from app.drift import tables as drift_tables
from app.performance import tables as performance_tables
from exceptions_queue import tables as queue_tables
from storage import tables as core_tables
from storage.base import Base

TABLE_MODULES = (core_tables, queue_tables, drift_tables, alerting_tables, performance_tables)

metadata: MetaData = Base.metadata
