"""AsyncMonitor: report predictions from an asyncio model server."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
from collections.abc import Generator
from types import TracebackType

import httpx

from ._base import MonitorBase
from ._core import Outcome, Request, Response, logger
from ._monitor import drain_blocking

__all__ = ["AsyncMonitor"]

_JSON = {"Content-Type": "application/json"}


class AsyncMonitor(MonitorBase):
    """`Monitor` for asyncio: the same batching, retries and bounds, sent by a
    background task with ``httpx.AsyncClient``.

    ``log()`` and ``feedback()`` are plain (non-async) calls that return at once;
    the sender task starts on the first call made inside a running event loop.
    ``flush()`` and ``close()`` are coroutines: await ``close()`` at shutdown
    (or use ``async with AsyncMonitor(...) as monitor:``). Records still queued
    at interpreter exit without a ``close()`` are sent synchronously then, for
    up to ``close_timeout`` seconds.
    """

    def _open(self) -> None:
        # the sender task starts on the first call made inside a running event loop
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None

    # -- public ---------------------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything logged so far; True when all of it is settled
        (sent, rejected or dropped), False if ``timeout`` seconds passed first.
        """
        self._start()
        core = self._core
        deadline = None if timeout is None else time.monotonic() + timeout
        with core.lock:
            target = core.request_flush()
        while True:
            with core.lock:
                if core.reached(target):
                    return True
            progress = self._progress
            if self._task is None or progress is None:
                return False
            wait = 0.5 if deadline is None else min(deadline - time.monotonic(), 0.5)
            if wait <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), wait)

    async def close(self, timeout: float | None = None) -> bool:
        """Flush (for up to ``timeout``, default ``close_timeout`` seconds), then
        stop the sender task. Records still undelivered are counted as dropped.
        """
        if self._closed:
            return True
        atexit.unregister(self._at_exit)
        done = await self.flush(self.close_timeout if timeout is None else timeout)
        self._closed = True
        core = self._core
        with core.lock:
            core.closed = True
            self._stopping = True
            lost = core.abandon()
            self._notify()
        if self._stop is not None:
            self._stop.set()
        if lost:
            logger.warning("driftdesk monitor closed with %d records undelivered (dropped)", lost)
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            except TimeoutError:
                task.cancel()
        return done

    async def __aenter__(self) -> AsyncMonitor:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the sender task ------------------------------------------------------------

    def _started(self) -> None:
        if self._task is None:
            self._start()

    def _start(self) -> None:
        if self._task is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not in a loop: records wait until a call made inside one
        with self._core.lock:
            self._loop = loop
            self._loop_thread = threading.get_ident()
            self._wake = asyncio.Event()
            self._stop = asyncio.Event()
            self._progress = asyncio.Event()
            self._wake.set()
            self._task = loop.create_task(self._run(), name="driftdesk-monitor")

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            if threading.get_ident() == self._loop_thread:
                wake.set()
            else:
                loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop is closed; the exit hook will send
            pass

    def _signal_progress(self) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        if progress is not None:
            progress.set()

    async def _run(self) -> None:
        core = self._core
        wake, stop = self._wake, self._stop
        assert wake is not None
        assert stop is not None
        try:
            async with httpx.AsyncClient(**self._client_args) as http:
                while True:
                    batch = None
                    with core.lock:
                        stream, wait = core.next_action(time.monotonic())
                        if stream is not None:
                            batch = core.take(stream)
                        else:
                            wake.clear()
                    if batch is None or stream is None:
                        self._signal_progress()
                        if self._stopping:
                            return
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), wait)
                        continue
                    try:
                        delay = await self._drive(http, core.process(stream, batch))
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # a bug here must not kill the sender
                        logger.exception("driftdesk monitor: unexpected error while sending")
                        delay = core.backoff_base
                    self._signal_progress()
                    if delay is not None:
                        try:
                            await asyncio.wait_for(stop.wait(), delay)
                            return
                        except TimeoutError:
                            pass
        finally:
            with core.lock:
                self._task = None
                self._loop = None
                self._wake = None
            self._signal_progress()

    async def _drive(
        self, http: httpx.AsyncClient, steps: Generator[Request, Outcome, float | None]
    ) -> float | None:
        try:
            request = next(steps)
            while True:
                outcome: Outcome
                try:
                    reply = await http.post(request.path, content=request.body, headers=_JSON)
                    outcome = Response(
                        reply.status_code, reply.text, reply.headers.get("Retry-After")
                    )
                except asyncio.CancelledError as exc:
                    with contextlib.suppress(StopIteration):
                        steps.send(exc)  # put the batch back before the task goes away
                    raise
                except Exception as exc:  # network errors, timeouts
                    outcome = exc
                request = steps.send(outcome)
        except StopIteration as stop:
            result: float | None = stop.value
            return result

    def _at_exit(self) -> None:
        if self._closed:
            return
        self._closed = True
        core = self._core
        with core.lock:
            if core.pending() == 0:
                return
        try:
            with httpx.Client(**self._client_args) as http:
                drain_blocking(core, http, time.monotonic() + self.close_timeout)
        except Exception:
            logger.exception("driftdesk monitor failed to flush at exit")
        with core.lock:
            core.closed = True
            lost = core.abandon()
        if lost:
            logger.warning("driftdesk monitor exited with %d records undelivered (dropped)", lost)
