"""`driftdesk demo`: the whole loop on a real data set, in about a minute.

A logistic regression is trained on scikit-learn's bundled Wisconsin breast
cancer set (569 tumours, 30 numerical measurements; nothing is downloaded).
The demo registers it with driftdesk, uploads a reference, and posts live
predictions through `driftdesk_client.Monitor`. Part-way, a second hospital
starts sending its patients, and its imaging software measures texture on a
scale 20% higher (a feature shift on the same data set). The demo prints what driftdesk makes of it, step by step: window evaluations, the drift
incident, the tickets (low confidence, wrong predictions once the biopsy
results arrive, the drift ticket with its labelling sample), the alert (a
signed webhook to a receiver the demo runs on loopback), a reviewer resolving
tickets, and the training-data export; then the URLs to open.

By default it starts ``driftdesk serve`` itself on a temporary SQLite file and
leaves it running until Ctrl-C (``--no-wait``: stop at the end); with ``--url``
and an admin ``--key`` it uses a running server instead.

Run through `driftdesk demo` (app.cli_remote registers it and checks that the
client and scikit-learn are installed before importing this module).
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np
import numpy.typing as npt
from driftdesk_client import (  # type: ignore[import-not-found, unused-ignore]
    Client,
    DriftdeskConnectionError,
    DriftdeskError,
    Monitor,
)
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from app.alerting.signing import SignatureError, generate_secret, verify
from app.cli_errors import CliError
from app.cli_remote import (
    DRIFT_HEADERS,
    DRIFT_NUMBERS,
    drift_rows,
    gather_status,
    render_performance,
    render_status,
    table,
)

MODEL = "breast-cancer"
LABELS = ("malignant", "benign")  # scikit-learn's target 0 and 1
WINDOW_SIZE, WINDOW_STEP = 400, 200  # predictions
CONFIDENCE_THRESHOLD = 0.75
REFERENCE_ROWS = 2_000
TICK = 200  # predictions per burst of traffic
CLEAN_TICKS, DRIFT_TICKS = 5, 6
TEXTURE_FACTOR = 1.2  # the second hospital's texture scale
INCIDENT_TIMEOUT = 30.0
STEPS = 15
BIOPSIES = 300  # ground truth for this many patients of each population


# --------------------------------------------------------------------------- printing
class Story:
    """Numbered steps with short explanations, each line flushed at once."""

    def __init__(self, out: IO[str], total: int) -> None:
        self.out = out
        self.total = total
        self.step_no = 0
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        self.step_no += 1
        elapsed = time.monotonic() - self.started
        self.say("")
        self.say(f"[{self.step_no}/{self.total}] {title}   ({elapsed:.0f}s)", indent=0)

    def say(self, text: str, indent: int = 2) -> None:
        for line in text.splitlines() or [""]:
            print(" " * indent + line if line else "", file=self.out, flush=True)


# --------------------------------------------------------------------------- data
@dataclass
class Data:
    """The breast cancer set, a trained model, and a way to draw traffic from them."""

    names: list[str]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    model: Any  # a fitted scikit-learn pipeline
    accuracy: float
    train_rows: int
    rng: np.random.Generator
    truth: dict[str, str] = field(default_factory=dict)  # prediction id -> true label

    @classmethod
    def load(cls, seed: int) -> Data:
        data = load_breast_cancer()
        x = np.asarray(data.data, dtype=np.float64)
        y = np.asarray(data.target, dtype=np.int64)
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=0.3, random_state=seed, stratify=y
        )
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(x_train, y_train)
        return cls(
            names=[str(n).replace(" ", "_") for n in data.feature_names],
            x=x,
            y=y,
            model=model,
            accuracy=float(model.score(x_test, y_test)),
            train_rows=len(y_train),
            rng=np.random.default_rng(seed),
        )

    @property
    def natural_malignant(self) -> float:
        return float((self.y == 0).mean())

    def draw(
        self, n: int, *, malignant: float | None = None, texture: float = 1.0
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """``n`` tumours resampled at a share of malignant ones, measured with 2% noise."""

        share = self.natural_malignant if malignant is None else malignant
        k = int(self.rng.binomial(n, share))
        rows = np.concatenate(
            [
                self.rng.choice(np.flatnonzero(self.y == 0), k),
                self.rng.choice(np.flatnonzero(self.y == 1), n - k),
            ]
        )
        self.rng.shuffle(rows)
        x = self.x[rows] * self.rng.normal(1.0, 0.02, (n, self.x.shape[1]))
        if texture != 1.0:
            x[:, [i for i, name in enumerate(self.names) if "texture" in name]] *= texture
        return x, self.y[rows]

    def predict(
        self, x: npt.NDArray[np.float64]
    ) -> list[tuple[dict[str, float], str, float, dict[str, float]]]:
        """(features, predicted label, confidence, probabilities) per row."""
        proba = self.model.predict_proba(x)
        out = []
        for row, p in zip(x.tolist(), proba.tolist(), strict=True):
            best = int(p[1] > p[0])
            out.append(
                (
                    dict(zip(self.names, (round(v, 6) for v in row), strict=True)),
                    LABELS[best],
                    round(max(p), 6),
                    {LABELS[0]: round(p[0], 6), LABELS[1]: round(p[1], 6)},
                )
            )
        return out


# --------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalServer:
    """`driftdesk serve` on a temporary SQLite file, with fast background loops."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{port}"
        self.admin_key = "dd_demo_" + secrets.token_urlsafe(24)
        self.database = workdir / "demo.db"
        self.log_path = workdir / "server.log"
        self.command = [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        # the demo's own settings only: none inherited from the caller's DRIFTDESK_* environment
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
        self.env = {
            **inherited,
            "DRIFTDESK_DATABASE_URL": f"sqlite:///{self.database}",
            "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": self.admin_key,
            "DRIFTDESK_PUBLIC_URL": self.url,
            "DRIFTDESK_EVALUATE_INTERVAL_SECONDS": "0.5",
            "DRIFTDESK_DISPATCH_INTERVAL_SECONDS": "0.5",
            "DRIFTDESK_ALLOW_PRIVATE_TARGETS": "true",  # the demo's webhook receiver is on loopback
            "DRIFTDESK_SQLITE_SYNCHRONOUS": "NORMAL",
            "DRIFTDESK_LOG_FORMAT": "text",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:

        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the server
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise CliError(f"driftdesk serve exited at start:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise CliError(
                    f"driftdesk serve was not ready after {timeout:.0f}s:\n{self.tail()}"
                )
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no server log)"


# --------------------------------------------------------------------------- webhooks
@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A tiny webhook receiver on loopback: records every POST, answers 204."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        received = self.deliveries
        lock = self.lock

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with lock:
                    received.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the demo's output clean

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/driftdesk-webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- the story
def _delivered(monitor: Monitor) -> None:
    """Wait until the monitor has sent everything; fail clearly if the server refuses it."""
    settled = monitor.flush(timeout=60)
    stats = monitor.stats()
    if stats.rejected or stats.dropped:
        raise CliError(
            f"the server refused {stats.rejected} and the monitor dropped {stats.dropped} "
            "records (see the server log)"
        )
    if not settled:
        raise CliError(f"the server did not take the predictions within 60s ({stats})")


def _names(names: list[str], limit: int = 6) -> str:
    """'a, b, c' or 'a, b, c and 5 more'."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _evaluation_line(ev: dict[str, Any], incidents_seen: set[int]) -> str:
    """One evaluation: rows, verdict, the drifted features with effect and threshold."""
    features = ev.get("features", [])
    head = f"evaluation {ev['id']}: {ev['rows']:,} predictions,"
    if ev.get("status") == "insufficient_data":
        return f"{head} too few to judge yet"
    line = f"{head} no drift"
    if ev.get("drifted"):
        outputs = [ev[k] for k in ("prediction", "confidence") if (ev.get(k) or {}).get("drifted")]
        drifted = sorted(
            (f for f in [*features, *outputs] if f.get("drifted")),
            key=lambda f: -(f["effect"] / f["threshold"] if f.get("threshold") else 0.0),
        )
        shown = [
            f"{f['name']} {f['effect']:.2f} > {f['threshold']:.2f}"
            if f.get("threshold") is not None and f.get("effect") is not None
            else f["name"]
            for f in drifted
        ]
        n = len([f for f in features if f.get("drifted")])
        line = f"{head} DRIFT in {n} of {len(features)} features: {_names(shown, 4)}"
    incident = ev.get("incident_id")
    if incident and incident not in incidents_seen:
        incidents_seen.add(incident)
        line += f"  -> incident {incident} opened"
    return line


class Demo:
    def __init__(self, client: Client, story: Story, data: Data, *, url: str, own: bool) -> None:
        self.client = client
        self.story = story
        self.data = data
        self.url = url
        self.own = own
        self.model = MODEL
        self.seen_evaluation = 0
        self.incidents_seen: set[int] = set()
        self.incident: dict[str, Any] | None = None
        self.receiver: Receiver | None = None
        self.channel: str | None = None
        self.secret: str | None = None
        self.review_key: str | None = None
        self.export_path: Path | None = None
        self._predicted: dict[str, str] = {}
        self._clean: set[str] = set()
        self._drifted: set[str] = set()

    # -- steps ------------------------------------------------------------------------
    def create_model(self) -> None:

        s, d = self.story, self.data
        s.step("A real model on a real data set")
        s.say(
            f"Wisconsin breast cancer (scikit-learn's bundled copy): {len(d.y)} tumours, "
            f"{len(d.names)} numerical measurements,\n{d.natural_malignant:.0%} malignant. "
            f"A logistic regression trained on {d.train_rows} of them scores "
            f"{d.accuracy:.1%} on the rest."
        )
        body: dict[str, Any] = {
            "task": "classification",
            "features": [{"name": n, "type": "numerical"} for n in d.names],
            "labels": list(LABELS),
            "window": {"kind": "count", "size": WINDOW_SIZE, "step": WINDOW_STEP},
            "confidence_threshold": CONFIDENCE_THRESHOLD,
            "drift": {"detectors": "auto", "alpha": 0.01, "min_effect": "auto"},
            # performance is judged against the reference: 5 points of accuracy may go
            "performance": {"metric": "accuracy", "max_drop": 0.05},
        }
        for attempt in range(5):
            name = MODEL if attempt == 0 else f"{MODEL}-{secrets.token_hex(3)}"
            try:
                self.client.create_model(name, **body)
            except DriftdeskError as exc:
                if exc.status == 409:
                    continue  # a server used before: take a fresh name
                raise
            self.model = name
            break
        else:
            raise CliError("could not find a free model name on this server")
        s.say(
            f"POST /v1/models -> model {self.model!r}: windows of {WINDOW_SIZE} predictions "
            f"evaluated every {WINDOW_STEP};\npredictions below {CONFIDENCE_THRESHOLD:.0%} "
            "confidence become tickets; drift judged at alpha 0.01 with a calibrated effect floor."
        )

    def upload_reference(self) -> None:
        s, d = self.story, self.data
        x, y = d.draw(REFERENCE_ROWS)
        records = [
            {"features": f, "prediction": p, "confidence": c, "label": LABELS[int(t)]}
            for (f, p, c, _), t in zip(d.predict(x), y.tolist(), strict=True)
        ]
        summary = self.client.upload_reference(self.model, records)
        s.step("The reference: what normal looks like")
        s.say(
            f"POST /v1/models/{self.model}/reference -> {summary.get('rows', len(records)):,} "
            "rows (features, the model's predictions and confidence,\nthe true labels) from "
            "the validation period. driftdesk fixes each feature's histogram bins from it;\n"
            "from now on every incoming batch is binned at ingest, so a window's evaluation "
            "adds block counts\ninstead of rescanning rows."
        )

    def create_keys(self) -> tuple[str, str]:
        ingest = self.client.create_key(f"{self.model}-server", ["ingest"])["secret"]
        review = self.client.create_key("reviewer-ana", ["review"])["secret"]
        self.review_key = review
        return str(ingest), str(review)

    def alert_channel(self) -> None:

        s = self.story
        s.step("An alert channel: a signed webhook")
        self.receiver = Receiver()
        self.secret = generate_secret()
        name = f"{self.model}-demo-webhook"
        try:
            self.client.create_alert_channel(
                name,
                "webhook",
                self.receiver.url,
                models=[self.model],
                min_severity="info",
                secret=self.secret,
            )
        except DriftdeskError as exc:
            if exc.status == 422 and not self.own:
                s.say(
                    f"The server refused a loopback target ({exc.message});\nit needs "
                    "DRIFTDESK_ALLOW_PRIVATE_TARGETS=true for the demo's receiver. "
                    "Alerts will be read from GET /v1/alerts."
                )
                return
            raise
        self.channel = name
        s.say(
            f"POST /v1/alert-channels -> {name!r}, kind webhook, target {self.receiver.url}\n"
            "(a receiver the demo runs itself). Deliveries go through the outbox, are retried "
            "with backoff,\nand are signed per Standard Webhooks (webhook-id, webhook-timestamp, "
            "webhook-signature)."
        )

    def traffic(self, ingest_key: str) -> None:

        s, d = self.story, self.data
        s.step("Live traffic from the deployed model")
        s.say(
            "The model server reports each prediction with driftdesk_client.Monitor: "
            "log() returns at once,\na background thread batches and retries. "
            f"{CLEAN_TICKS * TICK:,} patients from the usual population:"
        )
        monitor = Monitor(self.url, ingest_key, self.model, batch_size=TICK, flush_interval=0.2)
        clean_ids: list[str] = []
        try:
            for _ in range(CLEAN_TICKS):
                clean_ids += self._burst(monitor)
            self._wait_for_evaluations(CLEAN_TICKS * TICK)

            s.step("Ground truth arrives for some patients")
            biopsies = clean_ids[:BIOPSIES]
            wrong = 0
            for pid in biopsies:
                monitor.feedback(pid, d.truth[pid])
            _delivered(monitor)
            wrong = sum(
                1
                for item in self._predictions(biopsies)
                if item["prediction"] != d.truth[item["id"]]
            )
            s.say(
                f"Biopsy results for {len(biopsies)} of them: monitor.feedback(id, label) -> "
                f"POST /v1/models/{self.model}/feedback.\n{wrong} disagree with the model; "
                "each becomes a feedback_mismatch ticket for a human to confirm."
            )

            s.step("Part-way, the population changes")
            s.say(
                "A second hospital starts sending its patients. Same kind of patients, but its "
                "imaging software\nmeasures texture on a scale "
                f"{TEXTURE_FACTOR - 1:.0%} higher (a feature shift). The model keeps answering, "
                "confidently.\n"
                f"{DRIFT_TICKS * TICK:,} more predictions:"
            )
            drifted_ids: list[str] = []
            for _ in range(DRIFT_TICKS):
                drifted_ids += self._burst(monitor, texture=TEXTURE_FACTOR)
            self._wait_for_incident()
            # the second hospital's biopsy results come back too
            for pid in drifted_ids[-BIOPSIES:]:
                monitor.feedback(pid, d.truth[pid])
            _delivered(monitor)
        finally:
            monitor.close(timeout=10)
        stats = monitor.stats()
        s.say(
            f"monitor.stats(): sent {stats.sent:,}, retried {stats.retried}, dropped {stats.dropped}"
        )

    def _burst(
        self, monitor: Any, *, malignant: float | None = None, texture: float = 1.0
    ) -> list[str]:
        x, y = self.data.draw(TICK, malignant=malignant, texture=texture)
        ids = []
        for (features, label, confidence, probabilities), truth in zip(
            self.data.predict(x), y.tolist(), strict=True
        ):
            pid = monitor.log(features, label, confidence=confidence, probabilities=probabilities)
            self.data.truth[pid] = LABELS[int(truth)]
            self._predicted[pid] = label
            (self._drifted if texture != 1.0 else self._clean).add(pid)
            ids.append(pid)
        _delivered(monitor)
        time.sleep(0.3)  # traffic arrives over time; the evaluator runs every 0.5 s
        self._show_evaluations()
        return ids

    def _predictions(self, ids: list[str]) -> Iterator[dict[str, Any]]:
        wanted = set(ids)
        for item in self.client.iter_predictions(self.model, page_size=1000):
            if item["id"] in wanted:
                yield item

    def _show_evaluations(self) -> list[dict[str, Any]]:
        items = self.client.list_drift(self.model, limit=100).items
        new = sorted((e for e in items if e["id"] > self.seen_evaluation), key=lambda e: e["id"])
        for ev in new:
            self.story.say(_evaluation_line(ev, self.incidents_seen), indent=4)
            self.seen_evaluation = max(self.seen_evaluation, ev["id"])
        return new

    def _wait_for_evaluations(self, records: int, timeout: float = 15.0) -> None:
        """Until the evaluator has judged every finished step of ``records`` predictions."""
        last_block = records // WINDOW_STEP - 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = self.client.list_drift(self.model, limit=1).items
            if latest and latest[0]["blocks"][1] >= last_block:
                break
            time.sleep(0.25)
        self._show_evaluations()

    def _wait_for_incident(self) -> None:
        deadline = time.monotonic() + INCIDENT_TIMEOUT
        while time.monotonic() < deadline:
            self._show_evaluations()
            incidents = self.client.list_incidents(self.model, limit=10).items
            if incidents:
                self.incident = incidents[0]
                return
            time.sleep(0.3)

    def show_incident(self) -> None:
        s = self.story
        s.step("The drift incident")
        if self.incident is None:
            s.say(
                f"No incident opened within {INCIDENT_TIMEOUT:.0f}s (see GET "
                f"/v1/models/{self.model}/drift). The rest of the story goes on without it."
            )
            return
        inc = self.incident
        opts = self.client.get_model(self.model).get("options", {})
        s.say(
            f"incident {inc['id']} opened ({inc['severity']}) at evaluation "
            f"{inc['opened_evaluation_id']}: one opens after "
            f"{opts.get('incident_open_after')} drifted of the last "
            f"{opts.get('incident_of_last')} windows,\nand closes after "
            f"{opts.get('incident_close_after')} clean ones (the model's options). "
            f"Drifted: {_names(inc['drifted_features'], 8)}."
        )
        evaluation = next(
            (
                e
                for e in self.client.list_drift(self.model, limit=100).items
                if e["id"] == inc["opened_evaluation_id"]
            ),
            None,
        )
        if evaluation is not None:
            rows = [r for r in drift_rows(evaluation) if r[-1] == "DRIFT"]
            s.say(
                f"The drifted rows of evaluation {evaluation['id']} "
                f"(driftdesk evaluate {self.model} prints the whole table):"
            )
            s.say(
                table(DRIFT_HEADERS, rows, right=DRIFT_NUMBERS),
                indent=4,
            )
        s.say(
            "A feature counts as drifted only when its test is significant after "
            "Benjamini-Hochberg correction\nacross the features AND its effect (here the "
            "Wasserstein distance in reference standard deviations)\nexceeds what windows of "
            "this size drawn from the reference itself show: no alarms from noise."
        )

    def show_tickets(self) -> None:

        s = self.story
        s.step("Tickets: what a human should look at")
        tickets = list(self.client.iter_tickets(model=self.model))
        kinds = Counter(t["kind"] for t in tickets)
        s.say(
            f"GET /v1/tickets?model={self.model} -> {len(tickets)} open tickets: "
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        )
        for kind in ("low_confidence", "feedback_mismatch"):
            for t in [t for t in tickets if t["kind"] == kind][:2]:
                s.say(
                    f"ticket {t['id']} [{kind}, priority {t['priority']}]: {t['reason']}", indent=4
                )
        for t in [t for t in tickets if t["kind"] == "drift"]:
            s.say(
                f"ticket {t['id']} [drift, priority {t['priority']}]: {t['reason']}\n"
                f"  with a labelling sample of {t['count']} predictions from the drifted window "
                "(least confident and most out-of-reference first)",
                indent=4,
            )

    def show_alert(self) -> None:
        s = self.story
        s.step("The alert")
        if self.receiver is not None and self.channel is not None:
            opened = self._await_delivery("drift.incident.opened", timeout=15.0)
            if opened is not None:
                self._show_delivery(*opened)
            else:
                s.say(
                    "Nothing reached the webhook receiver within 15s "
                    f"({len(self.receiver.received())} deliveries): see GET /v1/alerts below."
                )
        alerts = [
            a for a in self.client.list_alerts(limit=100).items if a.get("model") == self.model
        ]
        if not alerts:
            s.say("GET /v1/alerts: no alert recorded for this model yet.")
            return
        s.say(
            "GET /v1/alerts keeps every alert and each delivery attempt (the outbox), "
            "retried with backoff until delivered:"
        )
        for alert in alerts[:3]:
            s.say(
                f"alert {alert.get('id')} [{alert.get('rule')}, {alert.get('severity')}, "
                f"{alert.get('status')}]: {alert.get('title')}",
                indent=4,
            )
            for d in alert.get("deliveries") or []:
                attempts = d.get("attempts")
                s.say(
                    f"delivery {d.get('id')} to {d.get('channel')}: {d.get('status')} after "
                    f"{attempts} attempt{'' if attempts == 1 else 's'}",
                    indent=6,
                )

    def _await_delivery(
        self, event_type: str, *, timeout: float
    ) -> tuple[Delivery, dict[str, Any]] | None:
        """The first delivery of ``event_type`` the receiver gets within ``timeout`` seconds."""
        assert self.receiver is not None
        deadline = time.monotonic() + timeout
        while True:
            for delivery in self.receiver.received():
                try:
                    payload = json.loads(delivery.body)
                except ValueError:
                    continue
                if isinstance(payload, dict) and payload.get("type") == event_type:
                    return delivery, payload
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)

    def _show_delivery(self, delivery: Delivery, payload: dict[str, Any]) -> None:

        assert self.secret is not None
        try:
            verify(self.secret, body=delivery.body, headers=delivery.headers)
            signed = "signature verified with the channel's secret"
        except SignatureError as exc:
            signed = f"signature did NOT verify: {exc}"
        data = payload.get("data", {})
        s = self.story
        s.say(
            f"The receiver got POST {payload.get('type')} (webhook-id "
            f"{delivery.headers.get('webhook-id')}): {signed}."
        )
        s.say(f"title:    {data.get('title')}", indent=4)
        for line in str(data.get("summary", "")).splitlines()[:6]:
            s.say(f"summary:  {line}", indent=4)
        for name, link in (data.get("links") or {}).items():
            s.say(f"link:     {name} {link}", indent=4)

    def review(self) -> None:

        s, d = self.story, self.data
        s.step("A reviewer works the queue")
        if not self.review_key:
            s.say("No reviewer key: nothing to review.")
            return
        s.say(
            "reviewer-ana (a key with the review scope) takes work: POST /v1/tickets/claim hands "
            "out the highest-priority,\noldest ticket with a lease; POST /v1/tickets/{id}/resolve "
            "records the true label (here, the biopsy result)."
        )
        done = 0
        with Client(self.url, self.review_key) as reviewer:
            for kind, n in (("low_confidence", 2), ("feedback_mismatch", 1), ("drift", 1)):
                for _ in range(n):
                    ticket = reviewer.claim_ticket(model=self.model, kind=kind, lease_seconds=300)
                    if ticket is None:
                        break
                    token = ticket["lease_token"]
                    if kind == "drift":
                        labels = [
                            {"prediction_id": p["id"], "label": d.truth[p["id"]]}
                            for p in ticket["predictions"]
                            if p["id"] in d.truth
                        ]
                        reviewer.resolve_ticket(
                            ticket["id"],
                            labels=labels,
                            note="second hospital: texture on another scale",
                            lease_token=token,
                        )
                        what = f"labelled its {len(labels)} sampled predictions"
                    else:
                        pid = ticket["prediction_id"]
                        label = d.truth[pid]
                        reviewer.resolve_ticket(
                            ticket["id"], label, note="biopsy result", lease_token=token
                        )
                        pred = ticket["predictions"][0] if ticket["predictions"] else {}
                        what = f"model said {pred.get('prediction')!r}, the truth is {label!r}"
                    done += 1
                    s.say(
                        f"claimed ticket {ticket['id']} ({kind}, lease 300s) and resolved it: {what}",
                        indent=4,
                    )
        s.say(
            f"{done} tickets resolved; each one's history (GET /v1/tickets/{{id}}) shows who "
            "claimed and resolved it, when."
        )

    def performance(self) -> None:
        s, d = self.story, self.data
        s.step("Is the model still right?")
        windows = self.client.page(f"/v1/models/{self.model}/performance", {"limit": 100}).items
        s.say(
            f"GET /v1/models/{self.model}/performance: per window, the accuracy realized on "
            "the biopsy results (with their coverage),\naudited from the reviewers' labels "
            "(weighted by how each ticket was sampled), and estimated without labels\n(CBPE: "
            "the model's confidence, calibrated on the reference). Newest first "
            "(driftdesk performance prints the same):"
        )
        shown = [w for w in windows if w["metrics"]["accuracy"]["realized"]] or windows
        s.say(render_performance(self.model, shown[:6], "accuracy"), indent=4)
        truth = {
            "before": [pid for pid in d.truth if pid in self._clean],
            "after": [pid for pid in d.truth if pid in self._drifted],
        }
        true = {
            k: float(np.mean([self._predicted[p] == d.truth[p] for p in ids])) if ids else None
            for k, ids in truth.items()
        }
        realized = [
            w["metrics"]["accuracy"]["realized"]["value"]
            for w in windows
            if w["metrics"]["accuracy"]["realized"]
        ]
        if realized and true["before"] is not None and true["after"] is not None:
            s.say(
                f"The true accuracy fell from {true['before']:.1%} on the usual patients to "
                f"{true['after']:.1%} on the second hospital's;\nthe realized windows went from "
                f"{realized[-1]:.1%} to {realized[0]:.1%}."
            )
        agree = [
            w
            for w in windows
            if w["metrics"]["accuracy"]["realized"]
            and w["metrics"]["accuracy"]["estimated"]
            and not w["concept_shift_suspected"]
        ]
        s.say(
            f"In {len(agree)} of {len(realized)} windows with biopsy results the label-free "
            "estimate agrees with the realized accuracy\n(within their intervals): the drift "
            "moved the inputs and the model's confidence moved with them."
        )

    def export(self, folder: Path) -> None:

        s = self.story
        s.step("Labelled retraining data")
        path = folder / f"{self.model}-training.jsonl"
        size = self.client.export_training_data(self.model, path, format="jsonl")
        rows = path.read_text().splitlines()
        self.export_path = path
        sources = Counter(json.loads(r).get("source") for r in rows)
        s.say(
            f"GET /v1/models/{self.model}/training-data?format=jsonl -> {len(rows)} rows "
            f"({', '.join(f'{n} {k}' for k, n in sorted(sources.items()))}), "
            f"{size:,} bytes, in {path}\n(also: driftdesk export {self.model} --format parquet "
            "-o labels.parquet). Each row has its source and weight (1 / the probability its "
            "record was chosen for review). One row:"
        )
        if rows:
            row = json.loads(rows[0])
            features = row.get("features") or {}
            shown = {k: v for k, v in row.items() if k != "features" and v is not None}
            s.say(json.dumps(shown, default=str)[:400], indent=4)
            s.say(f"+ {len(features)} features", indent=4)

    def status(self) -> None:

        self.story.step("driftdesk status")
        self.story.say(render_status(gather_status(self.client)))

    def urls(self, admin_key: str) -> None:
        s = self.story
        s.step("Open in a browser")
        report = (self.incident or {}).get("opened_evaluation_id") or self.seen_evaluation
        s.say(f"reviewers' UI:      {self.url}/ui/   (sign in with the admin key below)")
        if report:
            s.say(
                f"drift report:       {self.url}/ui/models/{self.model}/evaluations/{report}/report\n"
                f"  (the Evidently report of the drifted window; over the API: "
                f"{self.url}/v1/models/{self.model}/drift/report?evaluation={report})"
            )
        s.say(f"API docs:           {self.url}/docs")
        if self.export_path is not None and self.own:
            s.say(f"training data:      {self.export_path}   (deleted when the demo stops)")
        s.say(f"admin key:          {admin_key}")

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _connect(args: argparse.Namespace, story: Story, server: LocalServer | None) -> tuple[str, str]:
    """The URL and admin key the story uses: ``--url`` with ``--key``, or those of the
    local server, started here on a temporary SQLite file."""
    if server is None:
        if not args.key:
            raise CliError("--url needs --key: an API key with the admin scope")
        story.say(f"Using the server at {args.url.rstrip('/')}.")
        return args.url.rstrip("/"), args.key
    server.start()
    story.say(
        f"Started `driftdesk serve` at {server.url} on a temporary SQLite file\n"
        f"({server.database}; server log {server.log_path}), evaluating windows every "
        "0.5 s, with a bootstrap admin key."
    )
    return server.url, server.admin_key


def _tell(demo: Demo, client: Client, workdir: Path, key: str, *, remote: bool) -> None:
    """The story's steps, in order; a remote server's alert channel is removed after."""
    try:
        demo.create_model()
        demo.upload_reference()
        ingest_key, _ = demo.create_keys()
        demo.alert_channel()
        demo.traffic(ingest_key)
        demo.show_incident()
        demo.show_tickets()
        demo.show_alert()
        demo.review()
        demo.performance()
        demo.export(workdir)
        demo.status()
        demo.urls(key)
    except DriftdeskConnectionError as exc:
        raise CliError(f"lost the server: {exc.message}") from None
    except DriftdeskError as exc:
        raise CliError(f"the server answered: {exc}") from None
    finally:
        if remote and demo.channel:
            with contextlib.suppress(DriftdeskError):  # best effort on a remote server
                client.delete_alert_channel(demo.channel)


def _serve_until_stopped(server: LocalServer, story: Story) -> None:
    """Keep the local server up for the user until Ctrl-C (a KeyboardInterrupt)."""
    story.say("")
    story.say(
        f"The server keeps running at {server.url} — press Ctrl-C to stop it (its temporary "
        "files are then deleted).",
        indent=0,
    )
    while server.alive():
        time.sleep(0.5)
    raise CliError(f"driftdesk serve stopped:\n{server.tail()}")


def run(args: argparse.Namespace) -> int:
    """`driftdesk demo`: exit 0 when the story ran to the end with a drift incident."""
    # SIGTERM (a terminal closing, `kill`) stops the demo like Ctrl-C: the server it
    # started runs in its own session and would otherwise outlive it
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # even where a shell made the demo ignore it
    out = sys.stdout
    story = Story(out, STEPS)
    data = Data.load(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="driftdesk-demo-"))
    server: LocalServer | None = None
    demo: Demo | None = None
    waiting = False  # the story is over; Ctrl-C is the expected way out
    try:
        story.step("A driftdesk server")
        server = None if args.url else LocalServer(workdir, args.port or free_port())
        url, key = _connect(args, story, server)
        with Client(url, key, timeout=30) as client:
            demo = Demo(client, story, data, url=url, own=server is not None)
            _tell(demo, client, workdir, key, remote=server is None)
        if demo.incident is None:
            story.say("")
            story.say("The drift incident did not open: see the evaluations above.", indent=0)
            return 1
        if server is not None and not args.no_wait:
            waiting = True
            _serve_until_stopped(server, story)
        story.say("")
        story.say(f"Done in {time.monotonic() - story.started:.0f}s.", indent=0)
        return 0
    except KeyboardInterrupt:
        story.say("")
        story.say("Stopping.", indent=0)
        return 0 if waiting else 130
    finally:
        if demo is not None:
            demo.close()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
