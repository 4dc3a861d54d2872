"""The commands that talk to a running driftdesk over HTTP: export, evaluate, status.

They go through the Python client (`driftdesk_client.Client`), imported only
when a command runs, so ``driftdesk serve`` never needs it. Each command takes
``--url`` (default ``$DRIFTDESK_URL``, else http://127.0.0.1:8000) and ``--key``
(default ``$DRIFTDESK_KEY``). Failures are one line on stderr and exit code 1:
server unreachable, a rejected key (401), a key without the scope (403), an
unknown model (404), anything else the server answers with its error message.

``driftdesk demo`` is registered by app.cli (it imports the demo package lazily).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from app.cli_errors import CliError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from driftdesk_client import Client  # type: ignore[import-not-found, unused-ignore]

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_CLEAN, EXIT_DRIFT, EXIT_INSUFFICIENT = 0, 3, 4
# the latest window of `driftdesk performance` is degraded (same code as drift found)
EXIT_DEGRADED = EXIT_DRIFT
FORMATS = ("jsonl", "csv", "parquet")


# --------------------------------------------------------------------------- connection
def add_connection_arguments(parser: argparse.ArgumentParser, *, scope: str) -> None:
    """``--url`` and ``--key``, with their environment defaults."""
    parser.add_argument(
        "--url",
        default=os.environ.get("DRIFTDESK_URL") or DEFAULT_URL,
        help="the server's base URL (default: $DRIFTDESK_URL, else %(default)s)",
    )
    parser.add_argument(
        "--key",
        default=os.environ.get("DRIFTDESK_KEY"),
        help=f"an API key with the {scope} scope (default: $DRIFTDESK_KEY)",
    )


def require_client() -> None:
    """A clear error when the Python client (a separate package) is not installed."""
    if importlib.util.find_spec("driftdesk_client") is None:
        raise CliError(
            "this command needs the driftdesk Python client: pip install -e clients/python "
            "(or pip install driftdesk-client)"
        )


@contextmanager
def connect(args: argparse.Namespace, *, timeout: float = 30.0) -> Iterator[Client]:
    """A `Client` for ``--url``/``--key``; the client's errors become one clear line."""
    require_client()
    from driftdesk_client import (  # type: ignore[import-not-found, unused-ignore]
        Client,
        DriftdeskConnectionError,
        DriftdeskError,
    )

    try:
        client = Client(args.url, args.key, timeout=timeout)
    except ValueError as exc:
        raise CliError(f"{exc} (pass --url or set DRIFTDESK_URL)") from None
    try:
        yield client
    except DriftdeskConnectionError as exc:
        raise CliError(
            f"{exc.message} (is `driftdesk serve` running there? pass --url or set DRIFTDESK_URL)"
        ) from None
    except DriftdeskError as exc:
        raise CliError(explain(exc, url=client.url, key=args.key)) from None
    finally:
        client.close()


def explain(exc: Any, *, url: str, key: str | None) -> str:
    """One line for an error answer (a `driftdesk_client.DriftdeskError`)."""
    if exc.status == 401:
        if not key:
            return f"{url} needs an API key: pass --key or set DRIFTDESK_KEY"
        return f"{url} rejected the API key ({exc.message}): check --key or DRIFTDESK_KEY"
    if exc.status == 403:
        return f"the API key is not allowed to do this: {exc.message}"
    if exc.status == 404:
        return f"not found: {exc.message}"
    detail = f" {json.dumps(exc.details, default=str)}" if exc.details else ""
    return f"the server answered HTTP {exc.status} ({exc.code}): {exc.message}{detail}"


# --------------------------------------------------------------------------- formatting
def fmt_number(value: Any, digits: int = 4) -> str:
    """A table cell for a statistic: '-' when absent, scientific when tiny."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v != 0 and abs(v) < 10 ** -(digits - 1):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def fmt_age(seconds: float | None) -> str:
    """'-', '45s', '12m', '3h05m', '2d04h'."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # unreachable: the loop returns at GB


def age_since(timestamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds since an RFC 3339 timestamp from the API."""
    if not timestamp:
        return None
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - then).total_seconds()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: set[int]) -> str:
    """A plain-text table; columns in ``right`` are right-aligned (numbers)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        out = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


# --------------------------------------------------------------------------- export
class ProgressFile(io.FileIO):
    """A file that counts what is written to it and reports progress on a stream.

    Rows are counted as records end: a newline for JSON lines, a newline outside
    quotes for CSV (a note may span lines); Parquet rows are read from the
    finished file's footer instead.
    """

    def __init__(
        self,
        target: str | int,
        *,
        fmt: str,
        progress: TextIO | None,
        closefd: bool = True,
    ) -> None:
        super().__init__(target, "wb", closefd=closefd)
        self.fmt = fmt
        self.progress = progress
        self.bytes = 0
        self.newlines = 0
        self._in_quotes = False
        self._shown = 0.0

    def write(self, b: ReadableBuffer, /) -> int:
        data = bytes(b)
        written = super().write(data)
        self.bytes += len(data)
        if self.fmt == "jsonl":
            self.newlines += data.count(b"\n")
        elif self.fmt == "csv":
            parts = data.split(b'"')
            first = 1 if self._in_quotes else 0  # parts alternate out/in of quotes
            self.newlines += sum(p.count(b"\n") for p in parts[first::2])
            self._in_quotes ^= (len(parts) - 1) % 2 == 1
        now = time.monotonic()
        if self.progress is not None and now - self._shown >= 0.1:
            self._shown = now
            self.progress.write(f"\r{self.describe()}   ")
            self.progress.flush()
        return written if written is not None else len(data)

    def rows(self) -> int | None:
        """Records written so far (None for Parquet, counted at the end)."""
        if self.fmt == "jsonl":
            return self.newlines
        if self.fmt == "csv":
            return max(0, self.newlines - 1)  # the header line
        return None

    def describe(self) -> str:
        rows = self.rows()
        counted = "" if rows is None else f", {rows:,} rows"
        return f"exporting: {fmt_bytes(self.bytes)}{counted}"


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def cmd_export(args: argparse.Namespace) -> int:
    to_stdout = args.output == "-"
    show = None if args.quiet else sys.stderr
    live = show if show is not None and show.isatty() else None
    since, until = _timestamp(args.since, "--since"), _timestamp(args.until, "--until")
    target = None if to_stdout else Path(args.output)
    partial = None if target is None else target.with_name(target.name + ".part")
    if target is not None and target.is_dir():
        raise CliError(f"{target} is a directory: -o takes a file name")
    started = time.monotonic()
    try:
        with connect(args, timeout=args.timeout) as client:
            if partial is not None:
                out = ProgressFile(str(partial), fmt=args.format, progress=live)
            else:
                sys.stdout.flush()
                out = ProgressFile(
                    sys.stdout.fileno(), fmt=args.format, progress=live, closefd=False
                )
            with out:
                client.export_training_data(
                    args.model, out, format=args.format, since=since, until=until
                )
            if target is not None and partial is not None:
                partial.replace(target)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    if live is not None:
        live.write("\r" + " " * (len(out.describe()) + 3) + "\r")
    rows = out.rows()
    if rows is None and target is not None:
        rows = parquet_rows(target)
    if show is not None:
        where = "stdout" if target is None else str(target)
        counted = "" if rows is None else f"{rows:,} rows, "
        show.write(
            f"exported {counted}{fmt_bytes(out.bytes)} of {args.model!r} training data "
            f"({args.format}) to {where} in {time.monotonic() - started:.1f}s\n"
        )
    return EXIT_CLEAN


def _timestamp(value: str | None, option: str) -> str | None:
    """Check an RFC 3339 time with a zone (the server rejects zone-less ones)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option} {value!r} is not a time: use e.g. 2026-11-24T10:00:00Z") from None
    if parsed.tzinfo is None:
        raise CliError(f"{option} {value!r} has no time zone: add Z or an offset such as +01:00")
    return parsed.isoformat()


# --------------------------------------------------------------------------- evaluate
DRIFT_HEADERS = (
    "feature",
    "detector / effect",
    "statistic",
    "p-value",
    "adj. p",
    "effect",
    "threshold",
    "drifted",
)
DRIFT_NUMBERS = {2, 3, 4, 5, 6}  # right-aligned columns


def drift_rows(evaluation: dict[str, Any]) -> list[list[str]]:
    """One table row per feature, then the model's outputs (prediction, confidence)."""
    rows = []
    outputs = [evaluation.get(k) for k in ("prediction", "confidence")]
    for f in [*evaluation.get("features", []), *(o for o in outputs if o)]:
        detector = f.get("detector") or "-"
        if f.get("effect_measure") and f["effect_measure"] != detector:
            detector = f"{detector} / {f['effect_measure']}"
        rows.append(
            [
                str(f.get("name")),
                detector,
                fmt_number(f.get("statistic")),
                fmt_number(f.get("p_value")),
                fmt_number(f.get("adjusted_p_value")),
                fmt_number(f.get("effect")),
                fmt_number(f.get("threshold")),
                "DRIFT" if f.get("drifted") else "no",
            ]
        )
    return rows


def render_evaluation(model: str, evaluation: dict[str, Any], *, url: str) -> str:
    """The table of an evaluation with a header and a verdict line."""
    features = evaluation.get("features", [])
    drifted = [f["name"] for f in features if f.get("drifted")]
    outputs = [k for k in ("prediction", "confidence") if (evaluation.get(k) or {}).get("drifted")]
    window = ""
    if evaluation.get("window_start"):
        window = f", {evaluation['window_start']} to {evaluation['window_end']}"
    lines = [
        f"model {model}: evaluation {evaluation['id']} of {evaluation['rows']:,} rows{window}, "
        f"against reference {evaluation.get('reference_id')} "
        f"({evaluation.get('reference_rows') or 0:,} rows)",
        "",
        table(DRIFT_HEADERS, drift_rows(evaluation), right=DRIFT_NUMBERS),
        "",
    ]
    status = evaluation.get("status")
    if status == "insufficient_data":
        lines.append(
            f"not judged: {evaluation['rows']:,} rows in the window are too few "
            "(the model's drift.min_rows)"
        )
    elif drifted or outputs:
        lines.append(
            f"DRIFT in {len(drifted)} of {len(features)} features"
            + (f": {', '.join(drifted)}" if drifted else "")
            + (f"; the model's {' and '.join(outputs)} drifted too" if outputs else "")
        )
    else:
        lines.append(f"no drift: the {len(features)} features and the outputs are within bounds")
    if evaluation.get("incident_id"):
        lines.append(f"part of drift incident {evaluation['incident_id']}")
    lines.append(
        "a feature drifts when its adjusted p-value is below alpha AND its effect reaches the "
        "threshold"
    )
    lines.append(
        f"report: {url}/v1/models/{model}/drift/report?evaluation={evaluation['id']} "
        f"(or /ui/models/{model}/evaluations/{evaluation['id']}/report in a browser)"
    )
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    with connect(args) as client:
        evaluation = client.evaluate_drift(args.model)
    if args.json:
        print(json.dumps(evaluation, indent=2, default=str))
    else:
        print(render_evaluation(args.model, evaluation, url=args.url.rstrip("/")))
    if evaluation.get("status") == "insufficient_data":
        return EXIT_INSUFFICIENT
    return EXIT_DRIFT if evaluation.get("drifted") else EXIT_CLEAN


# --------------------------------------------------------------------------- status
def _window(window: dict[str, Any]) -> str:
    return f"{window.get('kind')} {window.get('size')}/{window.get('step')}"


def gather_status(client: Client) -> dict[str, Any]:
    """Everything `driftdesk status` shows, as one JSON-able dict."""
    from driftdesk_client import DriftdeskError  # type: ignore[import-not-found, unused-ignore]

    now = datetime.now(UTC)
    models = []
    for model in client.iter_models(page_size=200):
        name = model["name"]
        latest = client.list_drift(name, limit=1).items
        incidents = client.page(
            f"/v1/models/{quote(name, safe='')}/drift/incidents", {"status": "open", "limit": 100}
        ).items
        models.append(
            {
                "name": name,
                "task": model["task"],
                "status": model["status"],
                "window": model["window"],
                "records": model["records"],
                "reference_rows": (model.get("reference") or {}).get("rows"),
                "last_evaluation": latest[0] if latest else None,
                "open_incidents": incidents,
            }
        )

    def optional(path: str) -> dict[str, Any] | None:
        """The JSON at ``path``, or None from a server without it (an older version)."""
        try:
            body: dict[str, Any] = client.request("GET", path).json()
        except DriftdeskError as exc:
            if exc.status != 404:
                raise
            return None
        return body

    return {
        "url": client.url,
        "at": now.isoformat(),
        "models": models,
        "queue": optional("/v1/tickets/summary"),
        "workforce": optional("/v1/workforce"),
    }


def forecast_line(workforce: dict[str, Any] | None) -> str:
    """One line: staffing, inflow against capacity, the backlog band and the first breach."""
    if workforce is None:
        return "forecast: not available on this server (no /v1/workforce)"
    f = workforce.get("forecast")
    if f is None:
        return f"forecast: none yet ({workforce.get('forecast_unavailable') or 'no data'})"
    backlog = ", ".join(
        f"+{b['hours']:g}h {b['expected']:.0f} ({b['low']:.0f}-{b['high']:.0f})"
        for b in f["backlog"]
    )
    first = min(
        (b for b in f["breaches"] if b["in_minutes"] is not None),
        key=lambda b: b["in_minutes"],
        default=None,
    )
    breach = (
        "no SLA breach within 24h"
        if first is None
        else f"first breach {first['kind']} of {first['model']} in "
        f"{fmt_age(first['in_minutes'] * 60)}"
    )
    return (
        f"forecast: {f['reviewers']} reviewers, {workforce['arrivals_per_hour']:.0f}/h arriving "
        f"vs {f['capacity_per_hour']:.0f}/h capacity; waiting {backlog}; {breach}; "
        f"{f['reviewers_needed_now']} reviewers needed now"
    )


STATUS_COLUMNS = [
    "model",
    "task",
    "window",
    "records",
    "reference",
    "last evaluation",
    "open incidents",
    "open tickets",
    "oldest",
]


def _tickets_per_model(queue: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Open and held tickets and the oldest open age, per model, over the queue's kinds."""
    per_model: dict[str, dict[str, Any]] = {}
    for q in (queue or {}).get("queues", []):
        m = per_model.setdefault(q["model"], {"open": 0, "claimed": 0, "oldest": None})
        m["open"] += q["open"]
        m["claimed"] += q["claimed"]
        age = q.get("oldest_open_age_seconds")
        if age is not None and (m["oldest"] is None or age > m["oldest"]):
            m["oldest"] = age
    return per_model


def _last_evaluation(last: Any, now: datetime) -> str:
    if last is None:
        return "never"
    verdict = {"drift": "DRIFT", "ok": "ok", "insufficient_data": "too few rows"}
    return (
        f"{verdict.get(last.get('status'), last.get('status'))}, "
        f"{fmt_age(age_since(last.get('created_at'), now))} ago"
    )


def _status_row(
    m: dict[str, Any], tickets: dict[str, Any] | None, *, queue: bool, now: datetime
) -> list[str]:
    """One model's line of the status table."""
    incidents = m["open_incidents"]
    incident = ", ".join(f"#{i['id']} {i['severity']}" for i in incidents) if incidents else "-"
    return [
        m["name"] + ("" if m["status"] == "active" else f" ({m['status']})"),
        m["task"],
        _window(m["window"]),
        f"{m['records']:,}",
        "-" if m["reference_rows"] is None else f"{m['reference_rows']:,}",
        _last_evaluation(m["last_evaluation"], now),
        incident,
        "-" if not queue else str(tickets["open"] if tickets else 0),
        fmt_age(tickets["oldest"]) if tickets else "-",
    ]


def _queue_line(queue: dict[str, Any] | None) -> str:
    if queue is None:
        return "queue: not available on this server (no /v1/tickets/summary)"
    return (
        f"queue: {queue['open']} open, {queue['claimed']} claimed, {queue['overdue']} "
        f"overdue; oldest open ticket {fmt_age(queue.get('oldest_open_age_seconds'))}"
    )


def render_status(status: dict[str, Any]) -> str:
    now = datetime.fromisoformat(status["at"])
    queue = status["queue"]
    per_model = _tickets_per_model(queue)
    rows = [
        _status_row(m, per_model.get(m["name"]), queue=queue is not None, now=now)
        for m in status["models"]
    ]
    count = len(status["models"])
    lines = [f"driftdesk at {status['url']}: {count} model{'' if count == 1 else 's'}"]
    if rows:
        lines += ["", table(STATUS_COLUMNS, rows, right={3, 4, 7, 8})]
    lines += ["", _queue_line(queue), forecast_line(status.get("workforce"))]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    with connect(args) as client:
        status = gather_status(client)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        print(render_status(status))
    return EXIT_CLEAN


# --------------------------------------------------------------------------- performance
def _estimate(e: dict[str, Any] | None, *, extra: str = "") -> str:
    if not e:
        return "-"
    text = fmt_number(e.get("value"), 3)
    if e.get("ci_low") is not None and e.get("ci_high") is not None:
        text += f" [{fmt_number(e['ci_low'], 3)}, {fmt_number(e['ci_high'], 3)}]"
    return text + extra


def performance_rows(windows: Sequence[dict[str, Any]], metric: str) -> list[list[str]]:
    """One table row per window: realized (coverage), audited (labels), estimated, verdict."""
    rows = []
    for w in windows:
        m = (w.get("metrics") or {}).get(metric) or {}
        realized = m.get("realized")
        audited = m.get("audited")
        state = "DEGRADED" if w.get("degraded") else "ok"
        if w.get("concept_shift_suspected"):
            state += ", concept shift?"
        judged = (w.get("judged_by") or {}).get("source") or "-"
        rows.append(
            [
                str(w.get("window_end") or "-").replace("+00:00", "Z"),
                str(w.get("rows", "-")),
                _estimate(
                    realized,
                    extra=f" ({100 * realized['coverage']:.0f}%)" if realized else "",
                ),
                _estimate(audited, extra=f" n={audited['n']}" if audited else ""),
                _estimate(m.get("estimated")),
                fmt_number((w.get("reference") or {}).get(metric), 3),
                judged,
                state,
            ]
        )
    return rows


def render_performance(model: str, windows: Sequence[dict[str, Any]], metric: str) -> str:
    if not windows:
        return f"{model}: no window yet (post predictions first)"
    headers = [
        "window end",
        "rows",
        f"realized {metric} (coverage)",
        "audited (labels)",
        "estimated",
        "reference",
        "judged by",
        "state",
    ]
    lines = [
        f"{model}: {metric} per window, newest first (95% intervals in brackets)",
        "",
        table(headers, performance_rows(windows, metric), right={1}),
    ]
    bound = (windows[0].get("judged_by") or {}).get("bound")
    if bound is not None:
        lines += ["", f"bound: {fmt_number(bound, 4)}"]
    return "\n".join(lines)


def cmd_performance(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.model_version:
        params["model_version"] = args.model_version
    with connect(args) as client:
        windows = client.page(f"/v1/models/{quote(args.model, safe='')}/performance", params).items
    if args.json:
        print(json.dumps(windows, indent=2, default=str))
    else:
        metric = args.metric or next(
            (
                str(w["judged_by"]["metric"])
                for w in windows
                if w.get("judged_by") and w["judged_by"].get("metric")
            ),
            next(iter((windows[0].get("metrics") or {}) if windows else ["accuracy"]), "accuracy"),
        )
        print(render_performance(args.model, windows, metric))
    return EXIT_DEGRADED if windows and windows[0].get("degraded") else EXIT_CLEAN


# --------------------------------------------------------------------------- parsers
def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add export, evaluate, status and performance to the `driftdesk` command line."""
    _register_export(sub)
    _register_evaluate(sub)
    _register_status(sub)
    _register_performance(sub)


RAW = argparse.RawDescriptionHelpFormatter


def _register_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser(
        "export",
        help="write a model's labelled training data to a file",
        formatter_class=RAW,
        description="Stream every human-resolved prediction of MODEL (features, the model's "
        "output, the human label, who labelled it and when) to a file, with progress on "
        "stderr. Needs a key with the review scope. The file appears only when complete.",
        epilog="example:\n"
        "  driftdesk export churn-classifier --format parquet -o churn.parquet \\\n"
        "      --since 2026-11-01T00:00:00Z --url http://driftdesk:8000 --key $KEY\n\n"
        "exit codes: 0 written, 1 error (unreachable, rejected key, unknown model, write "
        "failure)",
    )
    export.add_argument("model", metavar="MODEL", help="the model's name")
    export.add_argument("--format", choices=FORMATS, default="jsonl", help="default: jsonl")
    export.add_argument("--since", help="only labels from this time (RFC 3339 with a zone)")
    export.add_argument("--until", help="only labels before this time (RFC 3339 with a zone)")
    export.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the file to write ('-': stdout)"
    )
    export.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    export.add_argument(
        "--timeout", type=float, default=300.0, help="seconds without data before giving up"
    )
    add_connection_arguments(export, scope="review")
    export.set_defaults(func=cmd_export)


def _register_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a model's current window for drift now and print the table",
        formatter_class=RAW,
        description="Judge MODEL's current window (including the step in progress) against "
        "its reference now, store the evaluation like a scheduled one (it counts towards "
        "incidents), and print one row per feature: detector, statistic, p-value (raw and "
        "adjusted across features), effect size, its threshold, and the verdict. Needs a key "
        "with the admin scope.",
        epilog="example:\n"
        "  driftdesk evaluate churn-classifier --key $DRIFTDESK_KEY\n\n"
        "exit codes: 0 no drift, 3 drift detected, 4 too few rows in the window to judge,\n"
        "            1 error (unreachable, rejected key, unknown model, no reference)",
    )
    evaluate.add_argument("model", metavar="MODEL", help="the model's name")
    evaluate.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    add_connection_arguments(evaluate, scope="admin")
    evaluate.set_defaults(func=cmd_evaluate)


def _register_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status",
        help="models, windows, evaluations, incidents and the ticket queue at a glance",
        formatter_class=RAW,
        description="One line per model: task, window (kind size/step), records received, "
        "reference rows, the last evaluation, open drift incidents, open tickets and the "
        "age of the oldest; then the queue's totals. Needs a key with the review scope.",
        epilog="example:\n"
        "  DRIFTDESK_URL=http://driftdesk:8000 DRIFTDESK_KEY=... driftdesk status\n\n"
        "exit codes: 0 shown, 1 error (unreachable, rejected key)",
    )
    status.add_argument("--json", action="store_true", help="print everything as JSON")
    add_connection_arguments(status, scope="review")
    status.set_defaults(func=cmd_status)


def _register_performance(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    performance = sub.add_parser(
        "performance",
        help="a model's performance per window: realized, audited and estimated",
        formatter_class=RAW,
        description="The latest windows of MODEL, newest first: the realized value of the "
        "watched metric (from ground truth) with its coverage, the audited value (reviewers' "
        "labels weighted by their inclusion probabilities) with its label count, the "
        "label-free estimate (CBPE or DLE), the reference's value, which estimate judged the "
        "window, and whether it is degraded. Needs a key with the review scope.",
        epilog="example:\n"
        "  driftdesk performance churn-classifier --limit 5 --key $DRIFTDESK_KEY\n\n"
        "exit codes: 0 the latest window is fine, 3 it is degraded,\n"
        "            1 error (unreachable, rejected key, unknown model)",
    )
    performance.add_argument("model", metavar="MODEL", help="the model's name")
    performance.add_argument("--limit", type=int, default=10, help="windows (default: 10)")
    performance.add_argument(
        "--metric", help="the metric to show (default: the model's watched metric)"
    )
    performance.add_argument("--model-version", help="only this model version's records")
    performance.add_argument("--json", action="store_true", help="print the windows as JSON")
    add_connection_arguments(performance, scope="review")
    performance.set_defaults(func=cmd_performance)
