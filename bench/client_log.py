"""What `Monitor.log()` costs the model: mean and p99 in microseconds over 100,000 calls.

The background sender is pointed at a loopback receiver (a separate process
answering every batch with 202, as driftdesk does), so the cost includes the
sender thread competing for the GIL while it serialises and posts batches.

    .venv/bin/python bench/client_log.py [--calls 100000] [--batch-size 500]

Target: under 20 µs on average.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from driftdesk_client import Monitor


def receive(port: int) -> None:
    """Answer every POST with 202 and the counts driftdesk would return."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            count = len(next(iter(body.values())))
            payload = json.dumps({"accepted": count, "duplicates": 0, "exceptions": 0}).encode()
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit("the loopback receiver did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        receive(args.receiver)
        return

    port = free_port()
    receiver = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)])
    try:
        wait_listening(port)
        monitor = Monitor(
            f"http://127.0.0.1:{port}", "bench-key", "bench", batch_size=args.batch_size
        )
        plans = ("basic", "pro", "team")
        costs = [0] * args.calls
        clock = time.perf_counter_ns
        log = monitor.log
        start = clock()
        for i in range(args.calls):
            before = clock()
            log({"age": i % 90, "plan": plans[i % 3], "tenure": 3.5}, "stay", confidence=0.91)
            costs[i] = clock() - before
        elapsed = clock() - start
        assert monitor.flush(timeout=120), monitor.stats()
        stats = monitor.stats()
        monitor.close()
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)

    costs.sort()
    mean = statistics.fmean(costs) / 1000
    p50 = costs[len(costs) // 2] / 1000
    p99 = costs[int(len(costs) * 0.99)] / 1000
    print(f"log() over {args.calls:,} calls (batch_size={args.batch_size}, loopback receiver):")
    print(
        f"  mean {mean:.2f} µs   p50 {p50:.2f} µs   p99 {p99:.2f} µs   max {costs[-1] / 1000:.0f} µs"
    )
    print(f"  wall {elapsed / args.calls / 1000:.2f} µs per call, timer included")
    print(
        f"  delivered: sent={stats.sent:,} dropped={stats.dropped} rejected={stats.rejected} "
        f"retried={stats.retried}"
    )
    if stats.sent != args.calls:
        raise SystemExit("not every record was delivered")


if __name__ == "__main__":
    main()
