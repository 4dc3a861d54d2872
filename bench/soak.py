"""Soak: 2 million records through HTTP; the server's resident memory must stay flat.

Starts a real `driftdesk serve` (SQLite on a temporary file, background loops
on, so drift evaluations run throughout), creates a 25-feature model with a
reference, then posts batches of 1,000 records from 2 client threads until
2,000,000 are stored, sampling the server's RSS from /proc. Prints throughput
and the RSS at the start (after a warm-up of 50,000 records), every 10% and at
the end. Target: RSS grows by less than 100 MB.

    python bench/soak.py                  # 2,000,000 records
    python bench/soak.py --records 200000 # shorter
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._data import KINDS, Shift, synthetic

ADMIN = "dd_soak_admin_secret_0123456789"
BATCH = 1_000
WARMUP = 50_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def records(rng: np.random.Generator, n: int, shift: Shift) -> list[dict[str, object]]:
    cols = synthetic(rng, n, shift)
    rows = []
    for i in range(n):
        feats: dict[str, object] = {}
        for k, v in cols.items():
            x = v[i]
            if KINDS[k] == "numerical":
                feats[k] = None if np.isnan(x) else round(float(x), 4)
            else:
                feats[k] = x
        rows.append({"features": feats, "prediction": round(float(rng.normal()), 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = os.environ | {
            "DRIFTDESK_DATABASE_URL": f"sqlite:///{tmp}/soak.db",
            "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN,
            "DRIFTDESK_LOG_LEVEL": "WARNING",
            "DRIFTDESK_SQLITE_SYNCHRONOUS": "NORMAL",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        )
        try:
            for _ in range(300):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            model = {
                "name": "soak",
                "task": "regression",
                "features": [{"name": k, "type": t} for k, t in KINDS.items()],
                "window": {"kind": "count", "size": 100_000, "step": 10_000},
                "strict": False,
            }
            client.post("/v1/models", json=model).raise_for_status()
            reference = records(rng, 20_000, Shift())
            client.post("/v1/models/soak/reference", json={"records": reference}).raise_for_status()
            # 20 distinct bodies, reused with fresh ids: building JSON must not be the bottleneck
            templates = [records(rng, BATCH, Shift(mean_sigma=0.1 * (i % 3))) for i in range(20)]
            counter = iter(range(10**9))
            lock = threading.Lock()
            sent = 0
            errors = 0

            def post_batches(total: int) -> None:
                nonlocal sent, errors
                with httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
                ) as c:
                    while True:
                        with lock:
                            if sent >= total:
                                return
                            k = next(counter)
                            sent += BATCH
                        rows = templates[k % len(templates)]
                        body = orjson.dumps(
                            {"predictions": [r | {"id": f"s{k}-{j}"} for j, r in enumerate(rows)]}
                        )
                        r = c.post(
                            "/v1/models/soak/predictions",
                            content=body,
                            headers={"content-type": "application/json"},
                        )
                        if r.status_code != 202:
                            with lock:
                                errors += 1

            def run(total: int) -> float:
                started = time.perf_counter()
                threads = [threading.Thread(target=post_batches, args=(total,)) for _ in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return time.perf_counter() - started

            run(WARMUP)
            start_rss = rss_mb(server.pid)
            print(
                f"after a warm-up of {WARMUP:,} records: server RSS {start_rss:.0f} MB", flush=True
            )
            print(f"{'records':>12} | {'RSS MB':>7} | {'records/s':>10}")
            samples = []
            step = max(BATCH, (args.records // 10) // BATCH * BATCH)
            done = WARMUP
            peak = start_rss
            while done < WARMUP + args.records:
                target = min(WARMUP + args.records, done + step)
                elapsed = run(target)
                rate = (target - done) / elapsed
                done = target
                rss = rss_mb(server.pid)
                peak = max(peak, rss)
                samples.append(rss)
                print(f"{done - WARMUP:>12,} | {rss:>7.0f} | {rate:>10,.0f}", flush=True)
            stored = client.get("/v1/models/soak").json()["records"]
            evaluations = len(
                client.get("/v1/models/soak/drift", params={"limit": 1000}).json()["items"]
            )
            growth = samples[-1] - start_rss
            print(
                f"\nstored {stored:,} records ({errors} failed batches), {evaluations} drift evaluations ran"
                f"\nRSS: {start_rss:.0f} MB after warm-up → {samples[-1]:.0f} MB at the end "
                f"(peak {peak:.0f} MB): growth {growth:+.0f} MB (target < 100 MB)"
            )
        finally:
            client.close()
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
