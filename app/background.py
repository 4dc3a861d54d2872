"""The background loops: drift evaluation, lease expiry, alert delivery.

Each loop is a plain function ``step(db, settings) -> int`` (how much work it
did) run on its own thread at its interval; a step that did work runs again at
once, so a backlog drains without waiting. Steps must be safe with several
processes running them (``driftdesk serve`` replicas and ``driftdesk worker``s):
they claim work in the database, never in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from app.db import Database
from app.loops import LOOPS, Loop
from app.settings import Settings

log = logging.getLogger("driftdesk.background")


class Background:
    """Runs every loop of ``loops`` (app.loops.LOOPS) on a daemon thread until ``stop()``."""

    def __init__(self, db: Database, settings: Settings, loops: Sequence[Loop] = LOOPS) -> None:
        self.db = db
        self.settings = settings
        self.loops = tuple(loops)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for spec in self.loops:
            thread = threading.Thread(
                target=self._run, args=(spec,), name=f"driftdesk-{spec.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("background loops started", extra={"loops": [t.name for t in self._threads]})

    def _run(self, spec: Loop) -> None:
        interval = spec.interval(self.settings)
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                done = spec.step(self.db, self.settings)
                failures = 0
            except Exception:
                failures += 1
                log.exception("background step failed", extra={"loop": spec.name})
                done = 0
            if done:
                continue  # more may be waiting
            # back off on repeated failures (a database that is down), up to a minute
            wait = min(60.0, interval * (2 ** min(failures, 6))) if failures else interval
            self._stop.wait(max(0.0, wait - (time.monotonic() - started)))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
