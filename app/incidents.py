"""The incident debounce drift and performance share: open after k of the last m bad
windows, close after q good ones in a row (the model's ``incident_*`` options)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Action = Literal["open", "close", "hold", "none"]


@dataclass(frozen=True)
class Debounce:
    open_after: int  # k
    of_last: int  # m
    close_after: int  # q

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Debounce:
        return cls(
            int(options.get("incident_open_after", 2)),
            int(options.get("incident_of_last", 3)),
            int(options.get("incident_close_after", 3)),
        )

    def step(
        self, *, open_now: bool, bad: bool, recent: Sequence[bool], clean_streak: int
    ) -> tuple[Action, int]:
        """What one judged window does to the incident, and the new clean streak.

        ``recent`` are the last judged windows' verdicts, newest first, this one
        included (only read while no incident is open).
        """
        if not open_now:
            opens = bad and sum(recent[: self.of_last]) >= self.open_after
            return ("open" if opens else "none"), 0
        if bad:
            return "hold", 0
        streak = clean_streak + 1
        return ("close" if streak >= self.close_after else "hold"), streak
