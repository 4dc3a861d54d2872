"""The README documents every setting, so configuration docs cannot drift from the code."""

import re
from pathlib import Path

from app.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_MARKER = "<!-- settings-table:"


def settings_table() -> str:
    """The README's configuration table: the rows after its marker comment."""
    text = README.read_text()
    assert TABLE_MARKER in text, f"the README lost its {TABLE_MARKER} ... --> comment"
    rows = []
    for line in text.split(TABLE_MARKER, 1)[1].splitlines()[1:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return "\n".join(rows)


def test_every_setting_is_in_the_readme_exactly_once() -> None:
    table = settings_table()
    names = [f"DRIFTDESK_{name.upper()}" for name in Settings.model_fields]
    counts = {name: len(re.findall(rf"`{name}`", table)) for name in names}
    missing = [name for name, n in counts.items() if n == 0]
    twice = [name for name, n in counts.items() if n > 1]
    assert missing == [], f"add these to the README's configuration table: {missing}"
    assert twice == [], f"these stand more than once in the README's configuration table: {twice}"
    unknown = sorted(set(re.findall(r"`(DRIFTDESK_[A-Z0-9_]+)`", table)) - set(names))
    assert unknown == [], (
        f"the README's configuration table lists settings that do not exist: {unknown}"
    )


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text
    assert "make test" in text


def test_the_client_log_cost_in_the_text_is_the_benchmark_table_s() -> None:
    text = README.read_text()
    row = next(line for line in text.splitlines() if "bench/client_log.py" in line and "|" in line)
    mean = re.search(r"mean \*\*([\d.]+) µs\*\*", row)
    assert mean, row
    prose = re.search(r"`log\(\)` returns at once \(([^)]*)\)", text)
    assert prose, "the README no longer says what log() costs"
    quoted = [float(x) for x in re.findall(r"([\d.]+) µs", prose.group(1))]
    assert quoted and round(quoted[0]) == round(float(mean.group(1))), (prose.group(1), row)


def test_the_demo_against_a_running_server_says_what_that_server_needs() -> None:
    row = next(
        line for line in README.read_text().splitlines() if line.startswith("| `driftdesk demo")
    )
    assert "--url" in row and "DRIFTDESK_ALLOW_PRIVATE_TARGETS=true" in row, row


def test_the_readme_says_which_columns_a_reference_may_carry() -> None:
    section = README.read_text().split("## Reference data", 1)[1].split("\n## ", 1)[0]
    for column in ("`prediction`", "`confidence`", "`label`", "CSV", "Parquet"):
        assert column in section, column
