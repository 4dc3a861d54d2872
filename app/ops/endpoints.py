"""Operations: liveness, readiness (database reachable and migrated), Prometheus metrics."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from app.db import Database
from app.drift import metrics as drift_metrics
from app.errors import ServiceUnavailable, Unauthorized, error_body
from app.ops import metrics
from app.ops.migrations import current_revisions, head_revisions
from app.responses import JSON
from app.settings import Settings
from app.tickets import metrics as queue_metrics
from app.workforce import metrics as workforce_metrics

router = APIRouter()
log = logging.getLogger("driftdesk")

# The gauges read from the database at scrape time, each domain's in its order.
COLLECTORS: tuple[metrics.Collector, ...] = (
    *drift_metrics.COLLECTORS,
    *queue_metrics.COLLECTORS,
    *workforce_metrics.COLLECTORS,
)


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], responses={503: {"description": "not ready"}})
def readyz(request: Request) -> Any:
    """Readiness: the database answers and is migrated to the latest revision."""
    db: Database = request.app.state.db
    try:
        db.ping()
        current, heads = current_revisions(db.engine), head_revisions()
    except Exception as exc:
        # The driver's message names the host, port and user: logs only.
        log.warning(
            "not ready: database unreachable",
            extra={"error": f"{exc.__class__.__name__}: {exc}".splitlines()[0]},
        )
        return JSON(
            error_body("not_ready", "database unreachable: see the server's log"),
            status_code=503,
            headers=dict(ServiceUnavailable.headers),
        )
    if current != heads:
        return JSON(
            error_body(
                "not_ready",
                f"database at revision {sorted(current) or 'none'}, code expects "
                f"{sorted(heads)}: run 'driftdesk migrate'",
            ),
            status_code=503,
        )
    return {"status": "ready", "revision": sorted(current)}


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=PlainTextResponse,
    responses={401: {"description": "DRIFTDESK_METRICS_TOKEN is set; send it."}},
)
def prometheus(request: Request) -> PlainTextResponse:
    """Prometheus text format: requests, latencies, ingest and queue figures.

    Open unless `DRIFTDESK_METRICS_TOKEN` is set; then it needs that token as
    `Authorization: Bearer <token>` (the figures name the models).
    """
    settings: Settings = request.app.state.settings
    if settings.metrics_token is not None:
        given = (request.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        expected = settings.metrics_token.get_secret_value()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized(
                "GET /metrics needs the metrics token (DRIFTDESK_METRICS_TOKEN) as "
                "'Authorization: Bearer <token>'"
            )
    db: Database = request.app.state.db
    with db.session(readonly=True) as session:
        body = metrics.render(session, COLLECTORS)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
