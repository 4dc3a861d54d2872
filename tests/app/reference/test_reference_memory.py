"""A reference body's rows are counted as it is read: oversized references are refused
early, with peak memory bounded by the row limit, not by the body (a real server's RSS).

The server's peak resident memory (VmHWM, reset through /proc/PID/clear_refs before
each request) is measured around each upload. Before this was fixed, 30 MB of tiny
JSON records became ~1.5 million dicts (about a gigabyte) before the row limit was
checked, and a CSV upload was read whole and turned into a dict per row.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from bench._server import DriftdeskServer
from tests.conftest import ADMIN_SECRET
from tests.factories import model_body, reference_records

MAX_ROWS = 20_000
# Growth allowed over the resident size before the request: the 30 MB body itself
# (twice: received chunks and the joined body), a chunk of parsed records, columns.
MAX_GROWTH_MB = 160

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc/PID/clear_refs"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DriftdeskServer]:
    folder = tmp_path_factory.mktemp("reference-memory")
    env = {
        "DRIFTDESK_DATABASE_URL": f"sqlite:///{folder / 'dd.db'}",
        "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN_SECRET,
        "DRIFTDESK_MAX_REFERENCE_ROWS": str(MAX_ROWS),
        "DRIFTDESK_SQLITE_SYNCHRONOUS": "NORMAL",
    }
    with DriftdeskServer(env=env, log=folder / "server.log", cwd=folder) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: DriftdeskServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=300) as client:
        assert client.post("/v1/models", json=model_body()).status_code == 201
        # warm up every path once (imports, pandas, pyarrow), so growth is the request's own
        r = client.post("/v1/models/churn/reference", json={"records": reference_records(5000)})
        assert r.status_code == 201, r.text
        r = client.post("/v1/models/churn/reference", files={"file": ("a.csv", csv(5000))})
        assert r.status_code == 201, r.text
        r = client.post("/v1/models/churn/reference", files={"file": ("a.parquet", parquet(200))})
        assert r.status_code == 201, r.text
        yield client


def kib(pid: int, field: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0])


def peak_growth_mb(server: DriftdeskServer, send: httpx.Request, api: httpx.Client) -> float:
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # peak RSS := current RSS
    before = kib(server.pid, "VmRSS")
    response = api.send(send)
    assert response.status_code == 413, response.text[:500]
    assert response.json()["error"]["code"] == "payload_too_large"
    return (kib(server.pid, "VmHWM") - before) / 1024


def csv(rows: int) -> bytes:
    return b"age,income,plan,prediction\n" + b"41,52000.5,pro,stay\n" * rows


def parquet(rows: int) -> bytes:
    frame = pd.DataFrame({"age": [41.0] * rows, "income": [1.5] * rows, "plan": ["pro"] * rows})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def test_a_json_body_of_tiny_records_is_refused_early(
    server: DriftdeskServer, api: httpx.Client
) -> None:
    record = b'{"features": {"age": 1}},'
    rows = 30_000_000 // len(record)  # ~1.2 million records, 30 MB
    body = b'{"records": [' + record * rows + b'{"features": {"age": 1}}]}'
    request = api.build_request(
        "POST",
        "/v1/models/churn/reference",
        content=body,
        headers={"content-type": "application/json"},
    )
    growth = peak_growth_mb(server, request, api)
    print(f"peak RSS growth: {growth:.0f} MB")
    assert growth < MAX_GROWTH_MB, f"peak RSS grew {growth:.0f} MB for a 30 MB JSON body"


def test_json_references_have_the_ordinary_body_limit(api: httpx.Client) -> None:
    body = b'{"records": [' + b" " * (33 * 1024 * 1024) + b"]}"
    r = api.post(
        "/v1/models/churn/reference", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "33554432" in r.json()["error"]["message"]


def test_a_csv_upload_of_millions_of_rows_is_refused_early(
    server: DriftdeskServer, api: httpx.Client
) -> None:
    data = csv(4_000_000)  # 80 MB
    request = api.build_request(
        "POST", "/v1/models/churn/reference", files={"file": ("big.csv", data, "text/csv")}
    )
    growth = peak_growth_mb(server, request, api)
    print(f"peak RSS growth: {growth:.0f} MB")
    assert growth < MAX_GROWTH_MB, f"peak RSS grew {growth:.0f} MB for an 80 MB CSV"


def test_a_parquet_upload_over_the_limit_is_refused_from_its_footer(
    server: DriftdeskServer, api: httpx.Client
) -> None:
    data = parquet(3_000_000)
    request = api.build_request(
        "POST", "/v1/models/churn/reference", files={"file": ("big.parquet", data)}
    )
    growth = peak_growth_mb(server, request, api)
    print(f"peak RSS growth: {growth:.0f} MB")
    assert growth < MAX_GROWTH_MB, f"peak RSS grew {growth:.0f} MB for a 3M-row Parquet"
    r = api.send(request)
    assert "3000000 rows" in r.json()["error"]["message"]


def test_a_reference_at_the_limit_is_accepted_in_chunks(api: httpx.Client) -> None:
    r = api.post("/v1/models/churn/reference", files={"file": ("ok.csv", csv(MAX_ROWS))})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == MAX_ROWS
    records = reference_records(MAX_ROWS)
    records[MAX_ROWS - 3]["features"]["age"] = "old"  # in the last chunk: its index is absolute
    r = api.post("/v1/models/churn/reference", json={"records": records})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["loc"] == ["records", MAX_ROWS - 3, "features", "age"]
    records[MAX_ROWS - 3]["features"]["age"] = 3
    r = api.post("/v1/models/churn/reference", json={"records": records})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == MAX_ROWS
