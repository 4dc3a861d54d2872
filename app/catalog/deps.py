"""The preamble the per-model read routes share: the model named in the path, for a reviewer.

``ReviewedModelDep`` checks the caller's key (``review`` scope: a 401/403 first),
then resolves ``{name}`` to the model (a 404 naming the way to list them).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth import ReviewerDep, SessionDep
from app.catalog import service as catalog
from storage.tables import MonitoredModel


def reviewed_model(name: str, session: SessionDep, _reviewer: ReviewerDep) -> MonitoredModel:
    return catalog.get_model(session, name)


ReviewedModelDep = Annotated[MonitoredModel, Depends(reviewed_model)]
