"""Client: a plain synchronous client for the driftdesk HTTP API."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ._base import check_url, headers_for
from ._core import dumps
from ._errors import DriftdeskConnectionError, DriftdeskError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Client", "Page"]

JSON = dict[str, Any]
Params = Mapping[str, str | int | float | None]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its ``items`` and the cursor of the next page (None at the end)."""

    items: list[JSON]
    next_cursor: str | None


def _seg(value: str | int) -> str:
    """A path segment, escaped (a model may be called ``a/b``)."""
    return quote(str(value), safe="")


def _ts(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (the server rejects naive ones)")
        return value.isoformat()
    return value


def _body(**fields: Any) -> JSON:
    """A request body without the optional fields left as None."""
    return {name: value for name, value in fields.items() if value is not None}


class Client:
    """Synchronous access to every endpoint of the driftdesk API.

    Every method returns the decoded JSON of the answer (a dict), raises
    `DriftdeskError` for an error answer (parsed from
    ``{"error": {"code", "message", "details"}}``) and
    `DriftdeskConnectionError` when the service cannot be reached. ``list_*``
    methods return one `Page`; ``iter_*`` methods follow ``next_cursor``
    through every page. Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = check_url(url)
        self._http = httpx.Client(
            base_url=self.url, headers=headers_for(key), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        files: Mapping[str, tuple[str, bytes | IO[bytes], str]] | None = None,
    ) -> httpx.Response:
        """Make a request; raise `DriftdeskError` unless the answer is 2xx."""
        content = None if json is None else dumps(json)
        headers = {"Content-Type": "application/json"} if content is not None else None
        query = None if params is None else {k: v for k, v in params.items() if v is not None}
        try:
            response = self._http.request(
                method, path, content=content, headers=headers, params=query, files=files
            )
        except httpx.TransportError as exc:
            raise DriftdeskConnectionError(
                0, "connection_error", f"cannot reach driftdesk at {self.url}: {exc}"
            ) from exc
        if not response.is_success:
            raise DriftdeskError.from_response(
                response.status_code, response.text, response.reason_phrase
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> JSON:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        body = response.json()
        return body if isinstance(body, dict) else {"items": body}

    def page(self, path: str, params: Params | None = None) -> Page:
        """One page of any list endpoint."""
        body = self._json("GET", path, params=params)
        items = body.get("items", [])
        cursor = body.get("next_cursor")
        return Page(list(items), str(cursor) if cursor else None)

    def paginate(self, path: str, params: Params | None = None) -> Iterator[JSON]:
        """Every item of a list endpoint, following ``next_cursor`` page after page."""
        query: dict[str, str | int | float | None] = dict(params or {})
        while True:
            page = self.page(path, query)
            yield from page.items
            if page.next_cursor is None:
                return
            query["cursor"] = page.next_cursor

    # -- models -----------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        task: str,
        features: Sequence[Mapping[str, Any]],
        labels: Sequence[Any] | None = None,
        window: Mapping[str, Any] | None = None,
        confidence_threshold: float | None = None,
        drift: Mapping[str, Any] | None = None,
        strict: bool | None = None,
        **extra: Any,
    ) -> JSON:
        """``POST /v1/models`` (admin): ``features`` as ``[{"name", "type"}]``."""
        body = _body(
            name=name,
            task=task,
            features=list(features),
            labels=None if labels is None else list(labels),
            window=window,
            confidence_threshold=confidence_threshold,
            drift=drift,
            strict=strict,
            **extra,
        )
        return self._json("POST", "/v1/models", json=body)

    def get_model(self, name: str) -> JSON:
        return self._json("GET", f"/v1/models/{_seg(name)}")

    def list_models(self, *, limit: int | None = None, cursor: str | None = None) -> Page:
        return self.page("/v1/models", {"limit": limit, "cursor": cursor})

    def iter_models(self, *, page_size: int | None = None) -> Iterator[JSON]:
        return self.paginate("/v1/models", {"limit": page_size})

    def update_model(self, name: str, **changes: Any) -> JSON:
        """``PATCH /v1/models/{name}`` with the fields to change."""
        return self._json("PATCH", f"/v1/models/{_seg(name)}", json=changes)

    def delete_model(self, name: str) -> JSON:
        """Archive the model (its data is kept)."""
        return self._json("DELETE", f"/v1/models/{_seg(name)}")

    # -- reference data ---------------------------------------------------------------

    def upload_reference(
        self, model: str, records: Iterable[Mapping[str, Any]] | pd.DataFrame
    ) -> JSON:
        """Replace the model's baseline; returns its summary.

        ``records``: ``[{"features": {...}, "prediction": ..., "label": ...}]``
        sent as JSON, or a pandas DataFrame uploaded as a CSV file (multipart
        field ``file``): one column per feature, plus ``prediction`` and
        ``label`` columns when present.
        """
        if hasattr(records, "to_csv") and hasattr(records, "columns"):
            csv = records.to_csv(index=False)
            return self.upload_reference_file(
                model, io.BytesIO(csv.encode()), filename="reference.csv"
            )
        return self._json(
            "POST", f"/v1/models/{_seg(model)}/reference", json={"records": list(records)}
        )

    def upload_reference_file(
        self,
        model: str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> JSON:
        """Upload a CSV or Parquet file (path or binary file object) as the baseline."""
        if isinstance(file, str | os.PathLike):
            path = Path(file)
            with path.open("rb") as handle:
                return self.upload_reference_file(
                    model, handle, filename=filename or path.name, content_type=content_type
                )
        name = filename or "reference.csv"
        kind = content_type or (
            "application/vnd.apache.parquet" if name.endswith(".parquet") else "text/csv"
        )
        return self._json(
            "POST", f"/v1/models/{_seg(model)}/reference", files={"file": (name, file, kind)}
        )

    def reference_from_window(self, model: str, start: datetime | str, end: datetime | str) -> JSON:
        """Freeze a window of live traffic as the new baseline (admin)."""
        return self._json(
            "POST",
            f"/v1/models/{_seg(model)}/reference/from-window",
            json={"start": _ts(start), "end": _ts(end)},
        )

    def get_reference(self, model: str) -> JSON:
        return self._json("GET", f"/v1/models/{_seg(model)}/reference")

    # -- predictions and feedback -----------------------------------------------------

    def post_predictions(self, model: str, records: Iterable[Mapping[str, Any]]) -> JSON:
        """Post a batch now (no buffering; see `Monitor` for that):
        returns ``{"accepted", "duplicates", "exceptions"}``.
        """
        return self._json(
            "POST", f"/v1/models/{_seg(model)}/predictions", json={"predictions": list(records)}
        )

    def post_feedback(self, model: str, feedback: Iterable[Mapping[str, Any]]) -> JSON:
        """Post ground truth now: ``[{"id": ..., "label": ...}]``."""
        return self._json(
            "POST", f"/v1/models/{_seg(model)}/feedback", json={"feedback": list(feedback)}
        )

    def list_predictions(
        self,
        model: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        return self.page(
            f"/v1/models/{_seg(model)}/predictions",
            {"start": _ts(start), "end": _ts(end), "limit": limit, "cursor": cursor},
        )

    def iter_predictions(
        self,
        model: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        page_size: int | None = 1000,
    ) -> Iterator[JSON]:
        return self.paginate(
            f"/v1/models/{_seg(model)}/predictions",
            {"start": _ts(start), "end": _ts(end), "limit": page_size},
        )

    # -- drift ------------------------------------------------------------------------

    def list_drift(
        self, model: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        """Drift evaluations, newest first."""
        return self.page(f"/v1/models/{_seg(model)}/drift", {"limit": limit, "cursor": cursor})

    def iter_drift(self, model: str, *, page_size: int | None = None) -> Iterator[JSON]:
        return self.paginate(f"/v1/models/{_seg(model)}/drift", {"limit": page_size})

    def evaluate_drift(self, model: str) -> JSON:
        """Evaluate the current window now (admin) and return the evaluation."""
        return self._json("POST", f"/v1/models/{_seg(model)}/drift/evaluate")

    def drift_report(self, model: str, evaluation: str | int) -> str:
        """The standalone HTML report of an evaluation."""
        response = self.request(
            "GET", f"/v1/models/{_seg(model)}/drift/report", params={"evaluation": str(evaluation)}
        )
        return response.text

    def list_incidents(
        self, model: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        return self.page(
            f"/v1/models/{_seg(model)}/drift/incidents", {"limit": limit, "cursor": cursor}
        )

    def iter_incidents(self, model: str, *, page_size: int | None = None) -> Iterator[JSON]:
        return self.paginate(f"/v1/models/{_seg(model)}/drift/incidents", {"limit": page_size})

    # -- tickets ----------------------------------------------------------------------

    def list_tickets(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        model: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        return self.page(
            "/v1/tickets",
            {"status": status, "kind": kind, "model": model, "limit": limit, "cursor": cursor},
        )

    def iter_tickets(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        model: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[JSON]:
        return self.paginate(
            "/v1/tickets", {"status": status, "kind": kind, "model": model, "limit": page_size}
        )

    def get_ticket(self, ticket: str | int) -> JSON:
        """The ticket, its prediction(s), drift context and event history."""
        return self._json("GET", f"/v1/tickets/{_seg(ticket)}")

    def claim_ticket(
        self,
        *,
        model: str | None = None,
        kind: str | None = None,
        lease_seconds: float | None = None,
    ) -> JSON | None:
        """Claim the next ticket; None when the queue is empty (204)."""
        response = self.request(
            "POST",
            "/v1/tickets/claim",
            json=_body(model=model, kind=kind, lease_seconds=lease_seconds),
        )
        if response.status_code == 204 or not response.content:
            return None
        body: JSON = response.json()
        return body

    def resolve_ticket(
        self, ticket: str | int, label: Any = None, note: str | None = None, **extra: Any
    ) -> JSON:
        """Resolve a ticket you hold; ``extra`` carries other fields (e.g. the
        labels of a drift ticket's sampled predictions).
        """
        return self._json(
            "POST",
            f"/v1/tickets/{_seg(ticket)}/resolve",
            json=_body(label=label, note=note, **extra),
        )

    def dismiss_ticket(self, ticket: str | int, reason: str | None = None) -> JSON:
        return self._json("POST", f"/v1/tickets/{_seg(ticket)}/dismiss", json=_body(reason=reason))

    def release_ticket(self, ticket: str | int) -> JSON:
        """Give a claimed ticket back to the queue."""
        return self._json("POST", f"/v1/tickets/{_seg(ticket)}/release")

    # -- training data ----------------------------------------------------------------

    def export_training_data(
        self,
        model: str,
        destination: str | os.PathLike[str] | IO[bytes],
        *,
        format: str = "jsonl",
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> int:
        """Stream every human-resolved prediction to ``destination`` (a path,
        written atomically, or a binary file object); returns the bytes written.
        """
        params = {"format": format, "since": _ts(since), "until": _ts(until)}
        query = {k: v for k, v in params.items() if v is not None}
        if not isinstance(destination, str | os.PathLike):
            return self._stream(f"/v1/models/{_seg(model)}/training-data", query, destination)
        path = Path(destination)
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as handle:
                written = self._stream(f"/v1/models/{_seg(model)}/training-data", query, handle)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return written

    def _stream(self, path: str, query: Mapping[str, str], out: IO[bytes]) -> int:
        written = 0
        try:
            with self._http.stream("GET", path, params=query) as response:
                if not response.is_success:
                    response.read()
                    raise DriftdeskError.from_response(
                        response.status_code, response.text, response.reason_phrase
                    )
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
        except httpx.TransportError as exc:
            raise DriftdeskConnectionError(
                0, "connection_error", f"cannot reach driftdesk at {self.url}: {exc}"
            ) from exc
        return written

    # -- keys -------------------------------------------------------------------------

    def create_key(self, name: str, scopes: Sequence[str]) -> JSON:
        """``{"id", "name", "scopes", "secret"}``; the secret is shown only here."""
        return self._json("POST", "/v1/keys", json={"name": name, "scopes": list(scopes)})

    def list_keys(self) -> list[JSON]:
        return list(self.paginate("/v1/keys"))

    def delete_key(self, key_id: str | int) -> JSON:
        """Revoke a key (at once)."""
        return self._json("DELETE", f"/v1/keys/{_seg(key_id)}")

    # -- alerts -----------------------------------------------------------------------

    def create_alert_channel(
        self,
        name: str,
        kind: str,
        target: str,
        *,
        models: Sequence[str] | None = None,
        min_severity: str | None = None,
        secret: str | None = None,
    ) -> JSON:
        """``kind``: slack, email or webhook; ``models=None`` means every model."""
        body = _body(name=name, kind=kind, target=target, min_severity=min_severity, secret=secret)
        body["models"] = None if models is None else list(models)
        return self._json("POST", "/v1/alert-channels", json=body)

    def list_alert_channels(self) -> list[JSON]:
        return list(self.paginate("/v1/alert-channels"))

    def delete_alert_channel(self, name: str) -> JSON:
        return self._json("DELETE", f"/v1/alert-channels/{_seg(name)}")

    def test_alert_channel(self, name: str) -> JSON:
        """Send a test message through the channel now."""
        return self._json("POST", f"/v1/alert-channels/{_seg(name)}/test")

    def list_alerts(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        return self.page("/v1/alerts", {"status": status, "limit": limit, "cursor": cursor})

    def iter_alerts(self, *, status: str | None = None) -> Iterator[JSON]:
        return self.paginate("/v1/alerts", {"status": status})

    # -- operations -------------------------------------------------------------------

    def healthy(self) -> bool:
        """``GET /healthz``: whether the service is alive (False when unreachable)."""
        try:
            self.request("GET", "/healthz")
        except DriftdeskError:
            return False
        return True

    def ready(self) -> bool:
        """``GET /readyz``: database reachable and migrated."""
        try:
            self.request("GET", "/readyz")
        except DriftdeskError:
            return False
        return True
