"""AsyncMonitor against the loopback fake, each test in its own event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from typing import Any

from driftdesk_client import AsyncMonitor, MonitorStats


def make(url: str, key: str, **options: Any) -> AsyncMonitor:
    settings: dict[str, Any] = {
        "batch_size": 10,
        "flush_interval": 60.0,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "timeout": 2.0,
    }
    settings.update(options)
    return AsyncMonitor(url, key, "churn", **settings)


def test_batches_by_size_and_flushes_on_close(fake: Any) -> None:
    async def main() -> list[str]:
        monitor = make(fake.url, fake.key, batch_size=10)
        ids = [monitor.log({"age": i}, "stay") for i in range(25)]
        for _ in range(200):  # the task sends the two full batches on its own
            if len(fake.ingest_requests()) == 2:
                break
            await asyncio.sleep(0.01)
        assert [len(r.ids()) for r in fake.ingest_requests()] == [10, 10]
        assert await monitor.close() is True
        assert monitor.stats() == MonitorStats(
            sent=25, retried=0, dropped=0, rejected=0, duplicates=0, pending=0
        )
        return ids

    ids = asyncio.run(main())
    assert [len(r.ids()) for r in fake.ingest_requests()] == [10, 10, 5]
    assert fake.stored_ids() == ids
    request = fake.ingest_requests()[0]
    assert request.path == "/v1/models/churn/predictions"
    assert request.headers["authorization"] == f"Bearer {fake.key}"


def test_batches_by_time(fake: Any) -> None:
    async def main() -> float:
        monitor = make(fake.url, fake.key, batch_size=1000, flush_interval=0.2)
        start = time.monotonic()
        monitor.log({"age": 1}, "stay")
        for _ in range(300):
            if fake.ingest_requests():
                break
            await asyncio.sleep(0.01)
        await monitor.close()
        return fake.ingest_requests()[0].at - start

    assert 0.15 <= asyncio.run(main()) < 2.0


def test_retries_with_the_same_ids_and_counts_duplicates(fake: Any) -> None:
    fake.then(503).then(429, headers={"Retry-After": "0"}).then(close=True, store=True)

    async def main() -> tuple[list[str], MonitorStats]:
        async with make(fake.url, fake.key, batch_size=5) as monitor:
            ids = [monitor.log({"age": i}, "stay") for i in range(5)]
            assert await monitor.flush(timeout=5)
            return ids, monitor.stats()

    ids, stats = asyncio.run(main())
    assert [r.ids() for r in fake.ingest_requests()] == [ids] * 4
    assert fake.stored_ids() == ids
    assert (stats.sent, stats.retried, stats.duplicates) == (5, 15, 5)


def test_rejects_4xx_and_feedback(fake: Any) -> None:
    async def main() -> MonitorStats:
        monitor = make(fake.url, fake.key, batch_size=50)
        monitor.log({"poison": 1}, "stay", id="bad")
        monitor.log({"age": 1}, "stay", id="good")
        monitor.feedback("good", "churn")
        assert await monitor.flush(timeout=5)
        await monitor.close()
        return monitor.stats()

    stats = asyncio.run(main())
    assert fake.stored_ids() == ["good"]
    assert fake.stored_ids("feedback") == ["good"]
    assert (stats.sent, stats.rejected) == (2, 1)


def test_drops_the_oldest_when_down_and_recovers(
    down_port: int, start_fake: Any, api_key: str
) -> None:
    async def main() -> tuple[list[str], Any, MonitorStats]:
        monitor = make(f"http://127.0.0.1:{down_port}", api_key, max_buffer=50, batch_size=10)
        ids = []
        for i in range(500):
            ids.append(monitor.log({"age": i}, "stay"))
            if i % 50 == 0:
                await asyncio.sleep(0.005)  # let the task fail a few times
        for _ in range(500):  # on a loaded machine the task may not have tried yet
            if monitor.stats().retried > 0:
                break
            await asyncio.sleep(0.01)
        before = monitor.stats()
        assert before.retried > 0
        assert before.dropped + before.pending == 500
        fake = start_fake(down_port)
        assert await monitor.flush(timeout=5)
        await monitor.close()
        return ids, fake, monitor.stats()

    ids, fake, stats = asyncio.run(main())
    received = fake.stored_ids()
    assert 50 <= len(received) <= 60
    assert received == ids[-len(received) :]
    assert stats.dropped == 500 - len(received)
    assert stats.sent == len(received)


def test_log_outside_a_loop_is_sent_by_the_first_flush(fake: Any) -> None:
    monitor = make(fake.url, fake.key)
    monitor.log({"age": 1}, "stay", id="early")  # no running loop yet: queued

    async def main() -> None:
        assert await monitor.flush(timeout=5)
        await monitor.close()

    asyncio.run(main())
    assert fake.stored_ids() == ["early"]


def test_unclosed_monitor_is_flushed_at_exit(fake: Any) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from driftdesk_client import AsyncMonitor

        async def main():
            monitor = AsyncMonitor({fake.url!r}, {fake.key!r}, "churn", flush_interval=60)
            for i in range(3):
                monitor.log({{"age": i}}, "stay", id=f"exit-{{i}}")
            await asyncio.sleep(0.05)

        asyncio.run(main())  # the loop ends with the records still queued
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert fake.stored_ids() == ["exit-0", "exit-1", "exit-2"]
