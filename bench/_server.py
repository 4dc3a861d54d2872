"""A real `driftdesk serve` process on a free port, for benchmarks and end-to-end tests.

    with DriftdeskServer(env={"DRIFTDESK_DATABASE_URL": "sqlite:///dd.db"}) as server:
        httpx.get(server.url + "/healthz")

The process's stderr goes to a file (``server.log``) so a failed start can say why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def driftdesk_command() -> list[str]:
    """The installed `driftdesk` entry point beside this interpreter, else `python -m app.cli`."""
    script = Path(sys.executable).parent / "driftdesk"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


class DriftdeskServer:
    """``driftdesk serve`` in a subprocess: start, wait until it answers, stop or kill."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        args: Sequence[str] = ("--no-background",),
        port: int | None = None,
        log: Path | None = None,
        cwd: Path = ROOT,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # only the settings given here: none inherited from the caller's DRIFTDESK_* environment
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
        self.env = {**inherited, "DRIFTDESK_LOG_LEVEL": "WARNING", **env}
        self.args = list(args)
        self.cwd = cwd
        self.start_timeout = start_timeout
        if log is None:
            handle, name = tempfile.mkstemp(prefix="driftdesk-server-", suffix=".log")
            os.close(handle)
            log = Path(name)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DriftdeskServer:
        command = [*driftdesk_command(), "serve", "--port", str(self.port), *self.args]
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                command, env=self.env, cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=err
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"driftdesk serve exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"driftdesk serve did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        """What the server wrote to stderr so far."""
        return self.log.read_text(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no goodbye (a crash, a power cut of the process)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> DriftdeskServer:
        return self.start(self.start_timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def scratch_postgres(base: str) -> Iterator[str]:
    """A fresh PostgreSQL database beside ``base``'s (its URL), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"dd_bench_{uuid.uuid4().hex[:8]}"
    params = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "dbname": url.database or "postgres",
    }
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
