"""Ingest's reads: stored predictions, traffic per hour, and the window blocks' counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from storage.sql import POSTGRESQL, dialect
from storage.tables import BlockCounts, Prediction


def predictions(
    session: Session,
    model_id: int,
    *,
    limit: int,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    after: tuple[dt.datetime, int] | None = None,
) -> list[Prediction]:
    """Stored predictions in ``[start, end)``, oldest first, keyset-paginated on (ts, id)."""
    stmt = (
        select(Prediction)
        .where(Prediction.model_id == model_id)
        .order_by(Prediction.ts, Prediction.id)
        .limit(limit)
    )
    if start is not None:
        stmt = stmt.where(Prediction.ts >= start)
    if end is not None:
        stmt = stmt.where(Prediction.ts < end)
    if after is not None:
        ts, last_id = after
        stmt = stmt.where(
            or_(Prediction.ts > ts, and_(Prediction.ts == ts, Prediction.id > last_id))
        )
    return list(session.scalars(stmt))


def _hour_bucket(session: Session) -> Any:
    if dialect(session) == POSTGRESQL:
        return cast(func.floor(func.extract("epoch", Prediction.ts) / 3600), Integer)
    # integer division: `/` is true division in SQLAlchemy 2, so every second was its own bucket
    return cast(func.strftime("%s", Prediction.ts), Integer) // 3600


def latest_ts(session: Session, model_id: int) -> dt.datetime | None:
    """The newest stored prediction's timestamp."""
    latest: dt.datetime | None = session.scalar(
        select(func.max(Prediction.ts)).where(Prediction.model_id == model_id)
    )
    return latest


def per_hour(session: Session, model_id: int, since: dt.datetime) -> dict[int, int]:
    """Predictions per hour since ``since``, by hour number (epoch seconds // 3600)."""
    bucket = _hour_bucket(session).label("hour")
    rows = session.execute(
        select(bucket, func.count())
        .where(Prediction.model_id == model_id, Prediction.ts >= since)
        .group_by(bucket)
    ).all()
    return {int(h): int(n) for h, n in rows}


def latest_block_parts(
    session: Session, model_id: int, reference_id: int, count: int
) -> list[tuple[int, bytes, dt.datetime]]:
    """The parts (block, encoded counts, last timestamp) of the ``count`` newest blocks
    counted against this reference."""
    where = (BlockCounts.model_id == model_id, BlockCounts.reference_id == reference_id)
    newest = session.scalar(select(func.max(BlockCounts.block)).where(*where))
    if newest is None:
        return []
    rows = session.execute(
        select(BlockCounts.block, BlockCounts.counts, BlockCounts.last_ts).where(
            *where, BlockCounts.block > newest - count
        )
    ).all()
    return [(int(b), blob, ts) for b, blob, ts in rows]
