"""The README documents every setting, so configuration docs cannot drift from the code."""

from pathlib import Path

from app.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [
        f"DRIFTDESK_{name.upper()}"
        for name in Settings.model_fields
        if f"DRIFTDESK_{name.upper()}" not in text
    ]
    assert missing == [], f"add these to the README's configuration table: {missing}"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text
    assert "make test" in text
