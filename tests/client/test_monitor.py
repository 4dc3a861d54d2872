"""Monitor against a real loopback HTTP server (the fake in conftest.py)."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from driftdesk_client import Monitor, MonitorStats


def test_batches_by_size_and_sends_the_contract_request(fake: Any, make_monitor: Any) -> None:
    monitor = make_monitor(fake.url, batch_size=10, flush_interval=60.0)
    ids = [monitor.log({"age": i, "plan": "pro"}, "churn", confidence=0.5) for i in range(35)]

    assert fake.wait_for(lambda: len(fake.ingest_requests()) == 3)
    time.sleep(0.2)  # the 5 left over wait for the interval (60 s) or a flush
    requests = fake.ingest_requests()
    assert [len(r.ids()) for r in requests] == [10, 10, 10]
    assert [i for r in requests for i in r.ids()] == ids[:30]

    first = requests[0]
    assert first.path == "/v1/models/churn/predictions"
    assert first.headers["authorization"] == f"Bearer {fake.key}"
    assert first.headers["content-type"] == "application/json"
    record = first.json()["predictions"][0]
    assert record["features"] == {"age": 0, "plan": "pro"}
    assert record["prediction"] == "churn"
    assert record["confidence"] == 0.5
    assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None
    assert "probabilities" not in record
    assert "model_version" not in record

    assert monitor.flush(timeout=5)
    assert [len(r.ids()) for r in fake.ingest_requests()] == [10, 10, 10, 5]
    assert fake.stored_ids() == ids
    assert monitor.stats() == MonitorStats(
        sent=35, retried=0, dropped=0, rejected=0, duplicates=0, pending=0
    )


def test_batches_by_time(fake: Any, make_monitor: Any) -> None:
    monitor = make_monitor(fake.url, batch_size=1000, flush_interval=0.3)
    start = time.monotonic()
    ids = [monitor.log({"age": i}, "stay") for i in range(3)]

    assert fake.wait_for(lambda: len(fake.ingest_requests()) == 1, timeout=3)
    request = fake.ingest_requests()[0]
    assert request.ids() == ids
    assert 0.25 <= request.at - start < 2.0
    assert fake.wait_for(lambda: monitor.stats().sent == 3)


def test_5xx_is_retried_with_the_same_ids(fake: Any, make_monitor: Any) -> None:
    fake.then(503).then(500)
    monitor = make_monitor(fake.url, batch_size=5)
    ids = [monitor.log({"age": i}, "stay") for i in range(5)]

    assert monitor.flush(timeout=5)
    requests = fake.ingest_requests()
    assert [r.ids() for r in requests] == [ids, ids, ids]
    assert fake.stored_ids() == ids
    stats = monitor.stats()
    assert (stats.sent, stats.retried, stats.rejected, stats.pending) == (5, 10, 0, 0)


def test_429_honours_retry_after(fake: Any, make_monitor: Any) -> None:
    fake.then(429, headers={"Retry-After": "1"})
    monitor = make_monitor(fake.url, batch_size=2)
    monitor.log({"age": 1}, "stay")
    monitor.log({"age": 2}, "stay")

    assert monitor.flush(timeout=5)
    first, second = fake.ingest_requests()
    assert first.ids() == second.ids()
    assert second.at - first.at >= 0.95  # not the 10 ms backoff of the fixture
    assert monitor.stats().sent == 2


def test_lost_answer_is_resent_and_counted_as_duplicate(fake: Any, make_monitor: Any) -> None:
    # The server stores the batch, then the connection drops before the answer.
    fake.then(close=True, store=True)
    monitor = make_monitor(fake.url, batch_size=4)
    ids = [monitor.log({"age": i}, "stay") for i in range(4)]

    assert monitor.flush(timeout=5)
    assert [r.ids() for r in fake.ingest_requests()] == [ids, ids]
    assert fake.stored_ids() == ids  # exactly once
    stats = monitor.stats()
    assert (stats.sent, stats.duplicates, stats.retried) == (4, 4, 4)


def test_connection_closed_without_storing_is_retried(fake: Any, make_monitor: Any) -> None:
    fake.then(close=True).then(close=True)
    monitor = make_monitor(fake.url, batch_size=3)
    ids = [monitor.log({"age": i}, "stay") for i in range(3)]
    assert monitor.flush(timeout=5)
    assert fake.stored_ids() == ids
    assert monitor.stats().duplicates == 0
    assert len(fake.ingest_requests()) == 3


def test_422_rejects_only_the_named_records_and_is_not_retried(
    fake: Any, make_monitor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = make_monitor(fake.url, batch_size=20)
    ids = []
    for i in range(20):
        features: dict[str, Any] = {"age": i}
        if i in (3, 11, 17):
            features["poison"] = True
        ids.append(monitor.log(features, "stay"))

    with caplog.at_level(logging.WARNING, logger="driftdesk_client"):
        assert monitor.flush(timeout=5)
    good = [id_ for i, id_ in enumerate(ids) if i not in (3, 11, 17)]
    assert fake.stored_ids() == good
    stats = monitor.stats()
    assert (stats.sent, stats.rejected, stats.retried, stats.dropped) == (17, 3, 0, 0)
    # one request per bad record found, then the clean rest: 4 in all
    assert len(fake.ingest_requests()) == 4
    assert "HTTP 422" in caplog.text
    assert "validation_error" in caplog.text  # the error body is logged


def test_422_without_details_is_narrowed_down_by_halving(fake: Any, make_monitor: Any) -> None:
    fake.then(422, body={"error": {"code": "validation_error", "message": "?"}})
    monitor = make_monitor(fake.url, batch_size=8)
    ids = [monitor.log({"age": i}, "stay") for i in range(8)]
    assert monitor.flush(timeout=5)
    # the whole batch was refused once; its halves (4 + 4) are accepted
    assert [len(r.ids()) for r in fake.ingest_requests()] == [8, 4, 4]
    assert fake.stored_ids() == ids
    assert monitor.stats().rejected == 0


def test_other_4xx_is_rejected_without_retry(
    fake: Any, make_monitor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from driftdesk_client import Monitor

    monitor = Monitor(fake.url, "wrong-key", "churn", batch_size=5, flush_interval=60)
    try:
        for i in range(5):
            monitor.log({"age": i}, "stay")
        with caplog.at_level(logging.WARNING, logger="driftdesk_client"):
            assert monitor.flush(timeout=5)
        assert len(fake.ingest_requests()) == 1
        stats = monitor.stats()
        assert (stats.rejected, stats.sent, stats.retried, stats.pending) == (5, 0, 0, 0)
        assert "HTTP 401" in caplog.text
        assert "missing or unknown API key" in caplog.text
    finally:
        monitor.close(timeout=1)


def test_413_splits_the_batch(fake: Any, make_monitor: Any) -> None:
    fake.then(413).then(413)
    monitor = make_monitor(fake.url, batch_size=8)
    ids = [monitor.log({"age": i}, "stay") for i in range(8)]
    assert monitor.flush(timeout=5)
    assert [len(r.ids()) for r in fake.ingest_requests()] == [8, 4, 2, 2, 4]
    assert fake.stored_ids() == ids


def test_drops_the_oldest_when_the_service_is_down(
    down_port: int, make_monitor: Any, start_fake: Any
) -> None:
    monitor = make_monitor(
        f"http://127.0.0.1:{down_port}", batch_size=10, max_buffer=100, flush_interval=0.01
    )
    ids = [monitor.log({"age": i}, "stay") for i in range(1000)]
    stats = monitor.stats()
    assert stats.sent == 0
    assert stats.dropped + stats.pending == 1000
    assert 100 <= stats.pending <= 110  # the buffer, plus at most one batch in flight

    # the service comes back on that port: the newest records arrive, once each
    fake = start_fake(down_port)
    assert monitor.flush(timeout=5)
    received = fake.stored_ids()
    assert 100 <= len(received) <= 110
    assert len(set(received)) == len(received)  # once each
    # the buffer kept the newest 100; at most one batch (10) had been taken out of it
    # before the drops, in flight: a run of older records when the drops passed it by
    assert set(ids[-100:]) <= set(received)
    extra = [i for i in received if i not in set(ids[-100:])]
    assert len(extra) <= 10
    if extra:
        start = ids.index(extra[0])
        assert extra == ids[start : start + len(extra)]
    stats = monitor.stats()
    assert stats.sent == len(received)
    assert stats.dropped == 1000 - len(received)
    assert stats.pending == 0


def test_max_retries_gives_up_and_counts_dropped(down_port: int, make_monitor: Any) -> None:
    monitor = make_monitor(f"http://127.0.0.1:{down_port}", batch_size=5, max_retries=2)
    for i in range(5):
        monitor.log({"age": i}, "stay")
    assert monitor.flush(timeout=5)
    stats = monitor.stats()
    assert (stats.dropped, stats.retried, stats.pending, stats.sent) == (5, 10, 0, 0)


def test_close_flushes_and_later_logs_are_dropped(fake: Any) -> None:
    monitor = Monitor(fake.url, fake.key, "churn", batch_size=100, flush_interval=60)
    ids = [monitor.log({"age": i}, "stay") for i in range(7)]
    time.sleep(0.1)
    assert fake.ingest_requests() == []
    assert monitor.close() is True
    assert fake.stored_ids() == ids
    assert monitor.close() is True  # idempotent

    monitor.log({"age": 8}, "stay")  # does not raise
    assert monitor.stats() == MonitorStats(
        sent=7, retried=0, dropped=1, rejected=0, duplicates=0, pending=0
    )


def test_close_gives_up_after_its_timeout(down_port: int) -> None:
    monitor = Monitor(
        f"http://127.0.0.1:{down_port}",
        "key",
        "churn",
        batch_size=10,
        backoff_base=0.01,
        backoff_max=0.02,
    )
    for i in range(25):
        monitor.log({"age": i}, "stay")
    start = time.monotonic()
    assert monitor.close(timeout=0.3) is False
    assert time.monotonic() - start < 2.5
    stats = monitor.stats()
    assert stats.dropped == 25
    assert stats.pending == 0


def test_context_manager_closes(fake: Any) -> None:
    with Monitor(fake.url, fake.key, "churn", flush_interval=60) as monitor:
        monitor.log({"age": 1}, "stay", id="req-1")
    assert fake.stored_ids() == ["req-1"]


def test_flushes_at_interpreter_exit(fake: Any) -> None:
    script = textwrap.dedent(
        f"""
        from driftdesk_client import Monitor
        monitor = Monitor({fake.url!r}, {fake.key!r}, "churn", flush_interval=60)
        for i in range(5):
            monitor.log({{"age": i}}, "stay", id=f"exit-{{i}}")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert fake.stored_ids() == [f"exit-{i}" for i in range(5)]


def test_feedback_goes_to_its_endpoint_after_the_prediction(fake: Any, make_monitor: Any) -> None:
    monitor = make_monitor(fake.url, batch_size=50)
    request_id = monitor.log({"age": 41}, "churn", id="req-8f3a")
    assert request_id == "req-8f3a"
    monitor.feedback("req-8f3a", "stay")
    monitor.feedback(42, "churn")  # ids are sent as strings

    assert monitor.flush(timeout=5)
    with fake.lock:
        paths = [r.path for r in fake.requests]
    assert paths == ["/v1/models/churn/predictions", "/v1/models/churn/feedback"]
    feedback = fake.ingest_requests("feedback")[0].json()
    assert feedback == {
        "feedback": [{"id": "req-8f3a", "label": "stay"}, {"id": "42", "label": "churn"}]
    }
    assert monitor.stats().sent == 3


def test_feedback_is_retried_too(fake: Any, make_monitor: Any) -> None:
    fake.then(503)
    monitor = make_monitor(fake.url)
    monitor.feedback("a", 1)
    assert monitor.flush(timeout=5)
    assert fake.stored_ids("feedback") == ["a"]
    assert monitor.stats().retried == 1


def test_optional_fields_and_value_conversion(fake: Any, make_monitor: Any) -> None:
    monitor = make_monitor(fake.url)
    features: dict[str, Any] = {
        "age": Decimal("41.5"),
        "tags": {"a"},
        "seen": datetime(2026, 1, 2, tzinfo=UTC),
    }
    monitor.log(
        features,
        "churn",
        probabilities={"stay": 0.46, "churn": 0.54},
        id="p1",
        timestamp=datetime(2026, 11, 24, 10, tzinfo=UTC),
        model_version="2026-11-01",
    )
    features["age"] = 99  # the caller may reuse its dict: log() copied it
    monitor.log({"age": 1}, 3.5, timestamp="2026-11-24T10:00:00Z", id="p2")
    monitor.log({"age": 1}, 3.5, timestamp=0, id="p3")
    monitor.log(
        {"age": 1}, 3.5, timestamp=datetime(2026, 1, 1, 12, tzinfo=timezone_plus_two()), id="p4"
    )
    assert monitor.flush(timeout=5)
    records = {r["id"]: r for r in fake.ingest_requests()[0].json()["predictions"]}
    assert records["p1"]["features"] == {
        "age": 41.5,
        "tags": ["a"],
        "seen": "2026-01-02T00:00:00+00:00",
    }
    assert records["p1"]["probabilities"] == {"stay": 0.46, "churn": 0.54}
    assert records["p1"]["model_version"] == "2026-11-01"
    assert records["p1"]["timestamp"] == "2026-11-24T10:00:00+00:00"
    assert "confidence" not in records["p1"]
    assert records["p2"]["timestamp"] == "2026-11-24T10:00:00Z"
    assert records["p3"]["timestamp"] == "1970-01-01T00:00:00.000000Z"
    assert records["p4"]["timestamp"] == "2026-01-01T12:00:00+02:00"


def timezone_plus_two() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=2))


def test_log_never_raises(fake: Any, make_monitor: Any, caplog: pytest.LogCaptureFixture) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    class BadMapping:
        def keys(self) -> Any:
            raise RuntimeError("broken mapping")

        def __getitem__(self, key: str) -> Any:
            raise KeyError(key)

    monitor = make_monitor(fake.url, batch_size=100)
    with caplog.at_level(logging.WARNING, logger="driftdesk_client"):
        assert monitor.log(None, "x") != ""  # type: ignore[arg-type]
        monitor.log(BadMapping(), "x")  # type: ignore[arg-type]
        monitor.log({"age": 1}, "x", id=Unprintable())  # type: ignore[arg-type]
        monitor.feedback(Unprintable(), "x")  # type: ignore[arg-type]
        monitor.log({"age": math.nan}, "x", id="nan")
        monitor.log({"age": math.inf}, "x", id="inf")
        monitor.log({"age": object()}, "x", id="object")
        monitor.log({"age": 1}, "x", confidence=math.nan, id="nan-confidence")
        monitor.log({"age": 1}, "x", timestamp=[1, 2], id="bad-ts")  # type: ignore[arg-type]
        monitor.log({"age": 1}, "x", timestamp=datetime(2026, 1, 1), id="naive-1")
        monitor.log({"age": 2}, "x", timestamp=datetime(2026, 1, 2), id="naive-2")
        monitor.log({"age": 3}, "x", id="fine")
        assert monitor.flush(timeout=5)

    # one batch, with only the records the server could accept
    assert fake.stored_ids() == ["naive-1", "naive-2", "fine"]
    stored = {r["id"]: r for r in fake.ingest_requests()[0].json()["predictions"]}
    assert stored["naive-1"]["timestamp"] == "2026-01-01T00:00:00+00:00"  # treated as UTC
    assert caplog.text.count("naive datetime timestamps are treated as UTC") == 1
    stats = monitor.stats()
    assert stats.rejected == 9
    assert stats.sent == 3
    assert stats.pending == 0


def test_numpy_values_are_converted(fake: Any, make_monitor: Any) -> None:
    np = pytest.importorskip("numpy")
    monitor = make_monitor(fake.url)
    monitor.log(
        {"age": np.int64(41), "score": np.float32(0.5), "vec": np.array([1, 2])},
        np.str_("churn"),
        confidence=np.float64(0.75),
        id="np",
    )
    assert monitor.flush(timeout=5)
    record = fake.ingest_requests()[0].json()["predictions"][0]
    assert record["features"] == {"age": 41, "score": 0.5, "vec": [1, 2]}
    assert (record["prediction"], record["confidence"]) == ("churn", 0.75)


def test_model_name_is_escaped_in_the_path(fake: Any, make_monitor: Any) -> None:
    monitor = make_monitor(fake.url, model="team a/churn")
    monitor.log({"age": 1}, "stay")
    assert monitor.flush(timeout=5)
    with fake.lock:
        assert fake.requests[0].path == "/v1/models/team%20a%2Fchurn/predictions"


def test_flush_times_out_while_down(down_port: int, make_monitor: Any) -> None:
    monitor = make_monitor(f"http://127.0.0.1:{down_port}")
    monitor.log({"age": 1}, "stay")
    start = time.monotonic()
    assert monitor.flush(timeout=0.2) is False
    assert 0.15 <= time.monotonic() - start < 1.5
    assert monitor.stats().pending == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_buffer": 5, "batch_size": 10}, "max_buffer"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"max_retries": -1}, "max_retries"),
        ({"model": ""}, "model"),
        ({"url": "localhost:8000"}, "URL"),
    ],
)
def test_configuration_errors_are_raised_at_construction(
    options: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {"url": "http://127.0.0.1:1", "model": "m"}
    settings.update(options)
    with pytest.raises(ValueError, match=message):
        Monitor(settings.pop("url"), "key", settings.pop("model"), **settings)


def test_log_is_thread_safe(fake: Any, make_monitor: Any) -> None:
    import threading

    monitor = make_monitor(fake.url, batch_size=100, flush_interval=0.05)
    threads = [
        threading.Thread(
            target=lambda t=t: [
                monitor.log({"t": t, "i": i}, "x", id=f"{t}-{i}") for i in range(2000)
            ]
        )
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert monitor.flush(timeout=10)
    assert sorted(fake.stored_ids()) == sorted(f"{t}-{i}" for t in range(4) for i in range(2000))
    assert monitor.stats().sent == 8000


def test_generated_ids_are_unique_uuid4(fake: Any, make_monitor: Any) -> None:
    import uuid

    monitor = make_monitor(fake.url, batch_size=1000)
    ids = [monitor.log({"age": 1}, "stay") for _ in range(2000)]
    assert len(set(ids)) == 2000
    parsed = [uuid.UUID(id_) for id_ in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed)
    assert [str(u) for u in parsed] == ids


def test_default_timestamp_is_the_time_of_the_call(fake: Any, make_monitor: Any) -> None:
    monitor = make_monitor(fake.url)
    before = time.time()
    monitor.log({"age": 1}, "stay")
    after = time.time()
    time.sleep(0.05)
    assert monitor.flush(timeout=5)
    stamp = fake.ingest_requests()[0].json()["predictions"][0]["timestamp"]
    assert stamp.endswith("Z")
    assert before - 1e-6 <= datetime.fromisoformat(stamp).timestamp() <= after + 1e-6
