"""The Workforce page: inflow against capacity, the backlog forecast, staffing, reviewers.

Reads through :mod:`app.workforce.service` (the same numbers as GET /v1/workforce).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.settings import Settings
from app.ui import charts
from app.ui.deps import ViewerDep, unit_of_work
from app.ui.render import add_nav, page
from app.workforce import service
from app.workforce.schemas import Workforce
from storage.base import utcnow

router = APIRouter(prefix="/ui", include_in_schema=False)
add_nav(("workforce", "/ui/workforce", "Workforce", False))


def _charts(w: Workforce, h: service.History) -> dict[str, Any]:
    past = [t.strftime("%a %H:00") for t in h.hours]
    f = w.forecast
    if f is None:
        return {
            "flow": charts.timeline(
                labels=past,
                title="Tickets opened and finished per hour, the last 48 hours",
                y_title="tickets / hour",
                x_title="hour (UTC)",
                bars=h.opened,
                bar_name="opened",
                line=h.finished,
                line_name="finished",
            )
        }
    future = [p.hour.strftime("%a %H:00") for p in f.plan]
    capacity = round(f.capacity_per_hour, 1)
    return {
        "flow": charts.timeline(
            labels=past + future,
            title="Inflow against capacity per hour: the last 48 hours and the next 24",
            y_title="tickets / hour",
            x_title="hour (UTC); bars: tickets opened (forecast after now); line: finished "
            "(capacity at current staffing after now)",
            bars=[*h.opened, *(p.arrivals_per_hour for p in f.plan)],
            bar_name="inflow",
            line=[*h.finished, *([capacity] * len(f.plan))],
            line_name="outflow / capacity",
            now_index=len(past),
        ),
        "backlog": charts.timeline(
            labels=[f"+{p.hours:g} h" for p in f.path],
            title="Waiting tickets forecast at current staffing, with the 10th-90th percentile band",
            y_title="waiting tickets",
            x_title="hours from now",
            line=[p.expected for p in f.path],
            line_name="waiting (fluid model)",
            low=[p.low for p in f.path],
            high=[p.high for p in f.path],
            band_name="10th-90th percentile",
        ),
        "staffing": charts.timeline(
            labels=future,
            title="Reviewers needed per hour against reviewers active now",
            y_title="reviewers",
            x_title="hour (UTC); bars: needed; line: active now",
            bars=[float(p.reviewers_needed) for p in f.plan],
            bar_name="reviewers needed",
            line=[float(f.reviewers)] * len(f.plan),
            line_name="reviewers active now",
        ),
    }


@router.get("/workforce", response_class=HTMLResponse)
def workforce_page(request: Request, principal: ViewerDep) -> Response:
    """Whether the reviewers keep up, and how many the coming hours need."""
    settings: Settings = request.app.state.settings
    now = utcnow()
    with unit_of_work(request, readonly=True) as session:
        w = service.workforce(session, now=now, settings=settings, band_runs=200)
        h = service.history(session, now=now)
    first = min(
        (b for b in (w.forecast.breaches if w.forecast else []) if b.in_minutes is not None),
        key=lambda b: b.in_minutes or 0.0,
        default=None,
    )
    return page(
        request,
        "workforce.html",
        {"w": w, "charts": _charts(w, h), "first_breach": first},
        principal=principal,
        nav="workforce",
    )
