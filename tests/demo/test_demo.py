"""`driftdesk demo --no-wait`: the whole story runs to the end against the server it starts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from bench._server import driftdesk_command


@pytest.mark.slow
def test_demo_runs_to_the_end_and_tells_the_story(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTDESK_")}
    env["TMPDIR"] = str(tmp_path)  # the demo's temporary files land here
    result = subprocess.run(
        [*driftdesk_command(), "demo", "--no-wait"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert "Traceback" not in out + result.stderr

    # clean traffic first, then the texture shift pinpointed by the window evaluations
    evaluations = re.findall(r"evaluation \d+: [\d,]+ predictions, (no drift|DRIFT[^\n]*)", out)
    assert evaluations[:4] == ["no drift"] * 4
    assert any("mean_texture" in e for e in evaluations if e.startswith("DRIFT"))

    # the incident, with the drifted texture features
    incident = re.search(r"incident (\d+) opened \((warning|critical)\) at evaluation (\d+)", out)
    assert incident, out
    assert re.search(r"Drifted: [^\n]*texture", out)

    # the tickets of every kind the story produces, and the reviewer working them
    listed = re.search(
        r"-> (\d+) open tickets: 1 drift, (\d+) feedback_mismatch, (\d+) low_confidence", out
    )
    assert listed, out
    assert int(listed.group(2)) > 0 and int(listed.group(3)) > 0
    assert f"drift incident {incident.group(1)}" in out
    assert "with a labelling sample of 20 predictions" in out
    assert "(drift, lease 300s) and resolved it: labelled its 20 sampled predictions" in out
    assert "4 tickets resolved" in out

    # the alert: a signed webhook that verifies (this server has alerting)
    assert "signature did NOT verify" not in out
    assert "drift.incident.opened" in out, out
    assert "signature verified with the channel's secret" in out, out

    # performance: accuracy per window, realized on the biopsies, estimated without labels
    assert "Is the model still right?" in out
    assert re.search(r"breast-cancer: accuracy per window, newest first", out), out
    fell = re.search(r"The true accuracy fell from ([\d.]+)% .* to ([\d.]+)%", out)
    assert fell, out
    assert float(fell.group(2)) < float(fell.group(1))
    agree = re.search(r"In (\d+) of (\d+) windows with biopsy results", out)
    assert agree and int(agree.group(2)) > 0, out

    # the export holds the 4 resolutions (3 single labels and the drift ticket's 20) and
    # the 600 biopsy results (ground truth from /feedback)
    assert re.search(r"training-data\?format=jsonl -> 623 rows \(600 feedback, 23 review\)", out), (
        out
    )
    assert "/ui/models/breast-cancer/evaluations/" in out and "/docs" in out
    assert re.search(r"Done in \d+s\.", out)

    # the server it started is stopped and its temporary files are gone
    assert not list(tmp_path.glob("driftdesk-demo-*"))
