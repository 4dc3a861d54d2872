"""The README's curl loop, command by command, against a real `driftdesk serve`.

The commands are read from the README's "The loop, with curl" block, split where
bash says a command is complete, and run one at a time in one bash session (so
the variables they set carry on), as a newcomer pastes them. Only the two
placeholders a reader fills in change: the server's address and the admin key.
`curl` is wrapped with `--fail-with-body`, so any 4xx or 5xx stops the loop there
and names the command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench._server import DriftdeskServer

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "dd_readme_loop_admin_0123456789abcdef"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("bash") and shutil.which("curl") and shutil.which("jq")),
        reason="the README's loop needs bash, curl and jq (apt-get install curl jq)",
    ),
]


def loop_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## The loop, with curl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the README's loop has no ```sh block"
    return match.group(1)


def commands(block: str) -> list[str]:
    """The block's commands, each whole (continuation lines and multi-line quotes joined)."""
    out: list[str] = []
    pending: list[str] = []
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        text = "\n".join(pending)
        if line.endswith("\\"):
            continue
        complete = subprocess.run(["bash", "-n", "-c", text], capture_output=True, timeout=10)
        if complete.returncode == 0:
            out.append(text)
            pending = []
    assert not pending, f"an unfinished command at the end of the README's loop: {pending}"
    return out


def test_the_commands_are_split_as_bash_reads_them() -> None:
    cmds = commands(loop_block())
    assert cmds[0].startswith("export DD=")
    assert sum(c.startswith("curl") or "$(curl" in c for c in cmds) >= 10
    multi = [c for c in cmds if "\n" in c]
    assert multi, "the multi-line posts were split apart"
    assert all(subprocess.run(["bash", "-n", "-c", c]).returncode == 0 for c in cmds)


def test_the_readme_loop_runs_as_written(tmp_path: Path) -> None:
    env = {
        "DRIFTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'dd.db'}",
        "DRIFTDESK_BOOTSTRAP_ADMIN_KEY": ADMIN,
        "DRIFTDESK_SQLITE_SYNCHRONOUS": "NORMAL",
    }
    work = tmp_path / "newcomer"
    work.mkdir()
    cmds = commands(loop_block())
    with DriftdeskServer(env=env, log=tmp_path / "server.log", cwd=tmp_path) as server:
        first = cmds[0]
        assert "http://127.0.0.1:8000" in first and "<the admin key>" in first
        cmds[0] = first.replace("http://127.0.0.1:8000", server.url).replace(
            "<the admin key>", ADMIN
        )
        shell = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=work,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert shell.stdin is not None and shell.stdout is not None
        # any HTTP error fails the command (and a $(curl ...) inside one); its body is shown
        shell.stdin.write('curl() { command curl --fail-with-body "$@"; }\nset -o pipefail\n')
        try:
            for i, command in enumerate(cmds):
                marker = f"__step_{i}_done__"
                shell.stdin.write(f"{command}\necho; echo {marker} $?\n")
                shell.stdin.flush()
                output: list[str] = []
                for line in shell.stdout:
                    if line.startswith(marker):
                        status = int(line.split()[1])
                        break
                    output.append(line)
                else:
                    pytest.fail(f"bash ended during:\n{command}\n{''.join(output)}")
                said = "".join(output)
                assert status == 0, f"README command failed ({status}):\n{command}\n{said}"
                assert '"error"' not in said, (
                    f"README command answered an error:\n{command}\n{said}"
                )
        finally:
            shell.stdin.close()
            shell.wait(30)
    # what the loop left behind is what it promises
    assert (work / "reference.csv").read_text().startswith("age,plan,prediction,confidence\n")
    assert "<html" in (work / "report.html").read_text().lower()
    labels = (work / "labels.csv").read_text().splitlines()
    assert len(labels) == 2 and "stay" in labels[1], labels
