"""`driftdesk export`, `evaluate` and `status` against a real `driftdesk serve` process.

One server per module (SQLite, no background loops, so nothing moves between
tests): a model with resolved tickets to export, a drifted model, a clean one
and one with too few rows. Most commands run in-process through
`app.cli.main` (fast); the failure cases run the installed entry point, to see
exactly what a user sees.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.cli import main
from app.cli_remote import EXIT_CLEAN, EXIT_DRIFT, EXIT_INSUFFICIENT, ProgressFile, fmt_age
from bench._server import DriftdeskServer, driftdesk_command, free_port

ADMIN = "dd_cli_remote_admin_0123456789abcdef"
FEATURES = [{"name": "age", "type": "numerical"}, {"name": "plan", "type": "categorical"}]
PLANS = np.array(["free", "pro", "team"], dtype=object)


def records(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> list[dict[str, Any]]:
    ages = rng.normal(40 + shift, 10, n)
    plans = PLANS[rng.integers(0, 3, n)]
    confidence = rng.uniform(0.5, 1.0, n)
    return [
        {
            "id": f"{shift}-{i}-{rng.integers(1 << 62)}",
            "features": {"age": round(float(a), 3), "plan": str(p)},
            "prediction": "churn" if c > 0.7 else "stay",
            "confidence": round(float(c), 4),
        }
        for i, (a, p, c) in enumerate(zip(ages, plans, confidence, strict=True))
    ]


def make_model(client: httpx.Client, name: str, rng: np.random.Generator) -> None:
    model = {
        "name": name,
        "task": "classification",
        "features": FEATURES,
        "labels": ["stay", "churn"],
        "window": {"kind": "count", "size": 1000, "step": 500},
        "confidence_threshold": 0.6,
    }
    client.post("/v1/models", json=model).raise_for_status()
    reference = [
        {"features": r["features"], "prediction": r["prediction"]} for r in records(rng, 2000)
    ]
    client.post(f"/v1/models/{name}/reference", json={"records": reference}).raise_for_status()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DriftdeskServer]:
    folder = tmp_path_factory.mktemp("cli-remote")
    env = {
        "DRIFTDESK_DATABASE_URL": f"sqlite:///{folder / 'dd.db'}",
        "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN,
        "DRIFTDESK_SQLITE_SYNCHRONOUS": "NORMAL",
    }
    with DriftdeskServer(env=env, log=folder / "server.log", cwd=folder) as running:
        rng = np.random.default_rng(5)
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=60) as client:
            for name in ("cli-labels", "cli-drifted", "cli-clean", "cli-few"):
                make_model(client, name, rng)
            batches = {
                "cli-labels": records(rng, 600),
                "cli-drifted": records(rng, 1000, shift=15.0),
                "cli-clean": records(rng, 1000),
                "cli-few": records(rng, 20),
            }
            for name, batch in batches.items():
                body = {"predictions": batch}
                client.post(f"/v1/models/{name}/predictions", json=body).raise_for_status()
            # a reviewer labels a few low-confidence predictions: the training data
            for i in range(7):
                claim = client.post("/v1/tickets/claim", json={"model": "cli-labels"})
                assert claim.status_code == 200, claim.text
                ticket = claim.json()
                resolve = {
                    "label": "churn" if i % 2 else "stay",
                    "note": 'a "quoted",\nmulti-line note' if i == 3 else "checked",
                    "lease_token": ticket["lease_token"],
                }
                client.post(f"/v1/tickets/{ticket['id']}/resolve", json=resolve).raise_for_status()
        yield running


def cli(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str], *args: str, key: str = ADMIN
) -> tuple[int, str, str]:
    code = main([*args, "--url", server.url, "--key", key])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def api_export(server: DriftdeskServer, model: str, fmt: str) -> bytes:
    response = httpx.get(
        f"{server.url}/v1/models/{model}/training-data",
        params={"format": fmt},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=60,
    )
    response.raise_for_status()
    return response.content


# --------------------------------------------------------------------------- export
@pytest.mark.slow
def test_export_jsonl_writes_the_rows_the_api_returns(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "labels.jsonl"
    code, out, err = cli(server, capsys, "export", "cli-labels", "-o", str(target))
    assert code == 0, err
    assert out == ""
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    expected = [json.loads(line) for line in api_export(server, "cli-labels", "jsonl").splitlines()]
    assert rows == expected
    assert len(rows) == 7
    assert {r["label"] for r in rows} == {"stay", "churn"}
    assert "exported 7 rows" in err and str(target) in err
    assert not (tmp_path / "labels.jsonl.part").exists()


@pytest.mark.slow
def test_export_csv_counts_rows_not_lines(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "labels.csv"
    code, _, err = cli(server, capsys, "export", "cli-labels", "--format", "csv", "-o", str(target))
    assert code == 0, err
    assert target.read_bytes() == api_export(server, "cli-labels", "csv")
    assert target.read_text().count("\n") > 8  # the header, 7 rows and a note's line break
    assert "exported 7 rows" in err


@pytest.mark.slow
def test_export_parquet_matches_the_api(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "labels.parquet"
    code, _, err = cli(
        server, capsys, "export", "cli-labels", "--format", "parquet", "-o", str(target)
    )
    assert code == 0, err
    expected = pq.read_table(pa.BufferReader(api_export(server, "cli-labels", "parquet")))
    assert pq.read_table(target).equals(expected)
    assert "exported 7 rows" in err


@pytest.mark.slow
def test_export_to_stdout_and_a_time_range(server: DriftdeskServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
    env |= {"DRIFTDESK_URL": server.url, "DRIFTDESK_KEY": ADMIN}
    whole = subprocess.run(
        [*driftdesk_command(), "export", "cli-labels", "-o", "-"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout == api_export(server, "cli-labels", "jsonl")
    past = subprocess.run(
        [
            *driftdesk_command(),
            "export",
            "cli-labels",
            "-o",
            "-",
            "--since",
            "2001-01-01T00:00:00Z",
            "--until",
            "2001-01-02T00:00:00+01:00",
        ],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert past.returncode == 0, past.stderr
    assert past.stdout == b""
    assert b"exported 0 rows" in past.stderr


def test_export_rejects_a_time_without_a_zone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["export", "m", "-o", str(tmp_path / "x"), "--since", "2026-11-01T10:00:00"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "driftdesk: error: --since '2026-11-01T10:00:00' has no time zone: "
        "add Z or an offset such as +01:00\n"
    )
    assert not (tmp_path / "x").exists()


def test_progress_counts_csv_records_across_chunks_and_quoted_newlines(tmp_path: Path) -> None:
    out = ProgressFile(str(tmp_path / "f.csv"), fmt="csv", progress=io.StringIO())
    with out:
        for chunk in (b'a,note\n1,"two\n', b'lines"\n2,"x""', b'y"\n3,z\n'):
            out.write(chunk)
    assert out.rows() == 3
    assert out.bytes == (tmp_path / "f.csv").stat().st_size
    jsonl = ProgressFile(str(tmp_path / "f.jsonl"), fmt="jsonl", progress=None)
    with jsonl:
        jsonl.write(b'{"a": "x\\ny"}\n{"a"')
        jsonl.write(b": 2}\n")
    assert jsonl.rows() == 2


# --------------------------------------------------------------------------- evaluate
@pytest.mark.slow
def test_evaluate_prints_the_table_and_exits_3_on_drift(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(server, capsys, "evaluate", "cli-drifted")
    assert code == EXIT_DRIFT, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("feature"))
    for column in ("detector", "statistic", "p-value", "effect", "threshold", "drifted"):
        assert column in header
    age = next(line for line in lines if line.startswith("age "))
    assert "ks / wasserstein" in age and age.endswith("DRIFT")
    plan = next(line for line in lines if line.startswith("plan "))
    assert "chi2" in plan and plan.endswith("no")
    assert "DRIFT in 1 of 2 features: age" in out
    assert "/v1/models/cli-drifted/drift/report?evaluation=" in out


@pytest.mark.slow
def test_evaluate_exit_codes_for_a_clean_and_a_thin_window(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(server, capsys, "evaluate", "cli-clean")
    assert code == EXIT_CLEAN, err
    assert "no drift" in out
    code, out, err = cli(server, capsys, "evaluate", "cli-few", "--json")
    assert code == EXIT_INSUFFICIENT, err
    evaluation = json.loads(out)
    assert evaluation["status"] == "insufficient_data"
    assert evaluation["rows"] == 20


# --------------------------------------------------------------------------- status
@pytest.mark.slow
def test_status_shows_models_evaluations_incidents_and_the_queue(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(server, capsys, "evaluate", "cli-drifted")[0] == EXIT_DRIFT
    code, out, err = cli(server, capsys, "status")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("cli-")}
    assert set(rows) == {"cli-labels", "cli-drifted", "cli-clean", "cli-few"}
    assert "count 1000/500" in rows["cli-labels"]
    assert "1,000" in rows["cli-drifted"] and "2,000" in rows["cli-drifted"]
    assert "DRIFT" in rows["cli-drifted"]
    assert "never" in rows["cli-labels"]
    assert "queue:" in out and "open" in out
    assert "forecast: " in out
    code, out, _ = cli(server, capsys, "status", "--json")
    status = json.loads(out)
    by_name = {m["name"]: m for m in status["models"]}
    assert by_name["cli-labels"]["records"] == 600
    assert by_name["cli-drifted"]["reference_rows"] == 2000
    open_tickets = status["queue"]["open"]
    assert open_tickets > 0
    assert f"queue: {open_tickets} open" in render_plain(status)


def test_forecast_line_reads_at_a_glance() -> None:
    from app.cli_remote import forecast_line

    workforce = {
        "arrivals_per_hour": 60.0,
        "forecast": {
            "reviewers": 2,
            "capacity_per_hour": 15.0,
            "reviewers_needed_now": 9,
            "backlog": [
                {"hours": 1.0, "expected": 67.2, "low": 60.0, "high": 75.0},
                {"hours": 4.0, "expected": 202.0, "low": 190.0, "high": 215.0},
            ],
            "breaches": [
                {"model": "churn", "kind": "drift", "in_minutes": 290.0},
                {"model": "churn", "kind": "audit", "in_minutes": None},
            ],
        },
    }
    assert forecast_line(workforce) == (
        "forecast: 2 reviewers, 60/h arriving vs 15/h capacity; waiting +1h 67 (60-75), "
        "+4h 202 (190-215); first breach drift of churn in 4h50m; 9 reviewers needed now"
    )
    assert forecast_line(None).startswith("forecast: not available")
    none_yet = {"forecast": None, "forecast_unavailable": "no ticket was finished"}
    assert forecast_line(none_yet) == "forecast: none yet (no ticket was finished)"


def render_plain(status: dict[str, Any]) -> str:
    from app.cli_remote import render_status

    return render_status(status)


def test_ages_read_at_a_glance() -> None:
    assert [fmt_age(s) for s in (None, 5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "-",
        "5s",
        "2m",
        "3h05m",
        "2d04h",
    ]


# --------------------------------------------------------------------------- failures
def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
    return subprocess.run(
        [*driftdesk_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("driftdesk: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.slow
def test_an_unreachable_server_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_line(run("status", "--url", url, "--key", "k"), f"cannot reach driftdesk at {url}")


@pytest.mark.slow
def test_a_rejected_or_missing_key_is_one_line(server: DriftdeskServer, tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    assert_one_line(
        run("export", "cli-labels", "-o", out, "--url", server.url, "--key", "dd_nope"),
        "rejected the API key",
        "--key",
    )
    assert not Path(out).exists() and not Path(out + ".part").exists()
    assert_one_line(run("status", "--url", server.url), "needs an API key")


@pytest.mark.slow
@pytest.mark.parametrize("args", [["status", "--json"], ["status"], ["evaluate", "cli-clean"]])
def test_a_reader_that_stops_early_is_no_error(server: DriftdeskServer, args: list[str]) -> None:
    # `driftdesk status --json | head`: the reader is gone before the output is written
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "wb") as stdout:
        done = subprocess.run(
            [*driftdesk_command(), *args, "--url", server.url, "--key", ADMIN],
            env={**os.environ, "DRIFTDESK_URL": ""},
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert "Traceback" not in done.stderr, done.stderr
    assert "BrokenPipe" not in done.stderr, done.stderr
    assert done.stderr == ""
    assert done.returncode == 141  # as a shell reports a command ended by SIGPIPE


@pytest.mark.slow
def test_unknown_model_and_missing_scope_are_one_line(server: DriftdeskServer) -> None:
    assert_one_line(run("evaluate", "nope", "--url", server.url, "--key", ADMIN), "not found")
    review = httpx.post(
        f"{server.url}/v1/keys",
        json={"name": "cli-reviewer", "scopes": ["review"]},
        headers={"Authorization": f"Bearer {ADMIN}"},
    ).json()["secret"]
    assert_one_line(
        run("evaluate", "cli-clean", "--url", server.url, "--key", review), "not allowed"
    )


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("export", "evaluate", "status", "performance", "demo"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "example" in text and f"driftdesk {command}" in text
        assert "exit codes:" in text


# --------------------------------------------------------------------------- performance
@pytest.mark.slow
def test_performance_prints_the_windows_and_exits_3_when_degraded(
    server: DriftdeskServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.app.performance.helpers import feedback, post, setup_model, simulate

    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        setup_model(client, performance={"metric": "accuracy", "min": 0.8})
        records, truth = simulate(2000, seed=41, concept_shift=3.0)
        post(client, records)
        feedback(client, records, truth)
        api = client.get("/v1/models/churn/performance").json()["items"]
    code, out, err = cli(server, capsys, "performance", "churn")
    assert code == (EXIT_DRIFT if api[0]["degraded"] else EXIT_CLEAN), err
    lines = out.splitlines()
    assert lines[0].startswith("churn: accuracy per window, newest first")
    header = next(line for line in lines if line.startswith("window end"))
    for column in ("realized accuracy (coverage)", "audited (labels)", "estimated", "reference"):
        assert column in header
    rows = [line for line in lines if line.startswith("2026-11-24")]
    assert len(rows) == 2  # two windows of 1000
    realized = api[0]["metrics"]["accuracy"]["realized"]["value"]
    assert f"{realized:.3f}"[:4] in rows[0] and "(100%)" in rows[0]
    assert "realized" in rows[0]
    assert "bound: 0.8" in out
    code, out, err = cli(server, capsys, "performance", "churn", "--json", "--limit", "1")
    assert json.loads(out) == api[:1]
    code, out, err = cli(server, capsys, "performance", "nope")
    assert code == 1 and "not found" in err
