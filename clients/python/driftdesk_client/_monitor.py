"""Monitor: report predictions from a thread-based model server."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Generator
from types import TracebackType

import httpx

from ._base import MonitorBase
from ._core import Outcome, Pipeline, Request, Response, logger

__all__ = ["Monitor", "drain_blocking", "drive_sync"]

_JSON = {"Content-Type": "application/json"}


class Monitor(MonitorBase):
    """Batch and deliver predictions in a background thread; never block the model.

    ``log()`` appends to a bounded in-memory queue and returns. A daemon thread
    POSTs batches of up to ``batch_size`` records to
    ``{url}/v1/models/{model}/predictions`` as soon as a batch is full, or when
    the oldest queued record has waited ``flush_interval`` seconds. Failed
    attempts (5xx, 429, network errors) are retried with exponential backoff
    and jitter (``backoff_base`` doubling up to ``backoff_max`` seconds; a
    Retry-After header wins), with the same ids, so nothing is stored twice.
    Other 4xx answers are not retried: the records are counted as rejected and
    the error body is logged (after a 422 naming bad records, or a 413, the
    rest of the batch is resent). ``max_retries=None`` retries until the
    service answers; when it is down for long, ``max_buffer`` bounds the
    memory used and the oldest records are dropped (``stats().dropped``).

    ``close()`` (also run at interpreter exit) flushes for up to
    ``close_timeout`` seconds. Create the monitor in the process that logs
    (after a pre-fork server such as gunicorn has forked its workers).
    """

    def _open(self) -> None:
        self._work = threading.Condition(self._core.lock)  # the sender waits here
        self._progress = threading.Condition(self._core.lock)  # flush() waits here
        self._stop = threading.Event()  # interrupts a backoff when closing
        self._http = httpx.Client(**self._client_args)
        self._thread = threading.Thread(
            target=self._run, name=f"driftdesk-monitor[{self._core.model}]", daemon=True
        )
        self._thread.start()

    # -- public ---------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything logged so far; True when all of it is settled
        (sent, rejected or dropped), False if ``timeout`` seconds passed first.
        With ``timeout=None`` it waits as long as the service is down.
        """
        core = self._core
        deadline = None if timeout is None else time.monotonic() + timeout
        with core.lock:
            target = core.request_flush()
            while not core.reached(target):
                if not self._thread.is_alive():
                    return False
                wait = 0.5 if deadline is None else min(deadline - time.monotonic(), 0.5)
                if wait <= 0:
                    return False
                self._progress.wait(wait)
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush (for up to ``timeout``, default ``close_timeout`` seconds), then
        stop the sender. Records still undelivered are counted as dropped and
        logged. Later ``log()`` calls are dropped. Returns whether all was settled.
        """
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self._at_exit)
        done = self.flush(self.close_timeout if timeout is None else timeout)
        core = self._core
        with core.lock:
            core.closed = True
            self._stopping = True
            lost = core.abandon()
            self._work.notify_all()
        self._stop.set()
        if lost:
            logger.warning("driftdesk monitor closed with %d records undelivered (dropped)", lost)
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive():
            self._http.close()
        return done

    def __enter__(self) -> Monitor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the sender thread ----------------------------------------------------------

    def _notify(self) -> None:
        self._work.notify()

    def _at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # never let a monitor break interpreter shutdown
            logger.exception("driftdesk monitor failed to flush at exit")

    def _run(self) -> None:
        core = self._core
        while True:
            with core.lock:
                while True:
                    if self._stopping:
                        self._progress.notify_all()
                        return
                    stream, wait = core.next_action(time.monotonic())
                    if stream is not None:
                        batch = core.take(stream)
                        break
                    self._progress.notify_all()
                    self._work.wait(wait)
            try:
                delay = drive_sync(self._http, core.process(stream, batch))
            except Exception:  # a bug here must not kill the sender
                logger.exception("driftdesk monitor: unexpected error while sending")
                delay = core.backoff_base
            with core.lock:
                self._progress.notify_all()
            if delay is not None and self._stop.wait(delay):
                return


def drive_sync(
    http: httpx.Client, steps: Generator[Request, Outcome, float | None]
) -> float | None:
    """Run `Pipeline.process` with a blocking client; returns its result."""
    try:
        request = next(steps)
        while True:
            outcome: Outcome
            try:
                reply = http.post(request.path, content=request.body, headers=_JSON)
                outcome = Response(reply.status_code, reply.text, reply.headers.get("Retry-After"))
            except Exception as exc:  # network errors, timeouts, closed client
                outcome = exc
            request = steps.send(outcome)
    except StopIteration as stop:
        result: float | None = stop.value
        return result


def drain_blocking(core: Pipeline, http: httpx.Client, deadline: float) -> None:
    """Send everything queued in ``core`` from this thread until ``deadline``."""
    with core.lock:
        core.request_flush()
    while time.monotonic() < deadline:
        with core.lock:
            stream, _ = core.next_action(time.monotonic())
            if stream is None:
                return
            batch = core.take(stream)
        delay = drive_sync(http, core.process(stream, batch))
        if delay is not None:
            if time.monotonic() + delay >= deadline:
                return
            time.sleep(delay)
