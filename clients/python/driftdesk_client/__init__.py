"""Report predictions to driftdesk from a deployed model: batched, retried, never blocking.

Usage::

    from driftdesk_client import Monitor
    monitor = Monitor("http://driftdesk:8000", key="<ingest key>", model="churn-classifier")
    request_id = monitor.log({"age": 41, "plan": "pro"}, "churn", confidence=0.54)
    monitor.feedback(request_id, "stay")  # ground truth, when it arrives
    print(monitor.stats())                 # sent, retried, dropped, rejected, duplicates, pending

`Monitor.log` only appends to a bounded in-memory queue; a background thread
sends batches and retries them, and `Monitor.close` (also run at interpreter
exit) flushes. `AsyncMonitor` does the same for asyncio servers, and `Client`
covers every other endpoint of the API (models, reference data, drift,
tickets, training-data export, keys, alert channels). The package depends on
httpx only; pandas is used, when installed, only for DataFrame uploads.
"""

from ._async import AsyncMonitor
from ._client import Client, Page
from ._core import MonitorStats
from ._errors import DriftdeskConnectionError, DriftdeskError
from ._monitor import Monitor

__all__ = [
    "AsyncMonitor",
    "Client",
    "DriftdeskConnectionError",
    "DriftdeskError",
    "Monitor",
    "MonitorStats",
    "Page",
]
__version__ = "0.1.0"
