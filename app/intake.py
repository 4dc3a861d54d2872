"""Where stored traffic meets the exception queue: the rules that open tickets.

Called inside the ingest transaction, so a ticket exists exactly when its
prediction does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.models import MonitoredModel, Prediction

if TYPE_CHECKING:
    from app.ingest import StoredBatch


def on_batch_stored(
    session: Session, model: MonitoredModel, stored: StoredBatch, *, now: dt.datetime
) -> int:
    """Open the tickets a stored batch calls for; returns how many were opened."""
    return 0


def on_feedback(
    session: Session, model: MonitoredModel, predictions: Sequence[Prediction], *, now: dt.datetime
) -> int:
    """Open tickets for ground truth that contradicts the prediction; returns how many."""
    return 0
