"""The client against a real `driftdesk serve` process, killed and restarted mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from driftdesk_client import Client, Monitor

ADMIN_KEY = "dd-e2e-admin-secret-0123456789"
TOTAL = 100_000


class Server:
    """`driftdesk serve` on a temporary SQLite file, which can be killed and restarted."""

    def __init__(self, workdir: Path, port: int) -> None:
        executable = Path(sys.executable).with_name("driftdesk")
        if not executable.exists():
            pytest.skip("the driftdesk server is not installed in this environment")
        self.command = [str(executable), "serve", "--port", str(port)]
        self.url = f"http://127.0.0.1:{port}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DRIFTDESK_DATABASE_URL": f"sqlite:///{workdir / 'dd.db'}",
            "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def start(self) -> None:
        self.log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=self.workdir, env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        with Client(self.url, timeout=2) as client:
            while not client.ready():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"driftdesk serve did not start:\n{self.output()}")
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, requests in flight are cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def output(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")[-5000:]


@pytest.fixture
def server(tmp_path: Path, down_port: int) -> Iterator[Server]:
    running = Server(tmp_path, down_port)
    running.start()
    yield running
    running.kill()


@pytest.mark.slow
def test_every_record_arrives_exactly_once_across_a_server_restart(server: Server) -> None:
    with Client(server.url, ADMIN_KEY) as client:
        client.create_model(
            "e2e-churn",
            task="classification",
            features=[
                {"name": "age", "type": "numerical"},
                {"name": "plan", "type": "categorical"},
            ],
            labels=["stay", "churn"],
            window={"kind": "count", "size": 5000, "step": 1000},
        )
        ingest = client.create_key("e2e-model-server", ["ingest"])["secret"]

    monitor = Monitor(
        server.url, ingest, "e2e-churn", batch_size=500, backoff_base=0.1, backoff_max=1.0
    )
    try:
        ids = []
        plans = ("basic", "pro", "team")
        for i in range(TOTAL // 2):
            ids.append(monitor.log({"age": i % 90, "plan": plans[i % 3]}, "stay", confidence=0.9))
        deadline = time.monotonic() + 120
        while monitor.stats().sent < TOTAL // 5:  # some delivered, more in flight
            assert time.monotonic() < deadline, monitor.stats()
            time.sleep(0.005)

        server.kill()
        for i in range(TOTAL // 2, TOTAL):
            ids.append(monitor.log({"age": i % 90, "plan": plans[i % 3]}, "churn", confidence=0.8))
        time.sleep(1.0)  # the monitor fails and backs off meanwhile
        down = monitor.stats()
        assert down.sent < TOTAL
        assert down.retried > 0

        server.start()
        assert monitor.flush(timeout=180), monitor.stats()
        stats = monitor.stats()
    finally:
        monitor.close(timeout=5)

    assert (stats.sent, stats.dropped, stats.rejected, stats.pending) == (TOTAL, 0, 0, 0)
    with Client(server.url, ADMIN_KEY) as client:
        stored = [item["id"] for item in client.iter_predictions("e2e-churn", page_size=1000)]
    assert len(stored) == TOTAL  # nothing stored twice...
    assert set(stored) == set(ids)  # ...and nothing lost
    assert len(set(ids)) == TOTAL
