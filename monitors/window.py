"""Windows and blocks: the arithmetic that turns a stream into mergeable pieces.

A *window* is ``size`` records (or seconds) of traffic; it slides by ``step``.
Each step is one *block*: counts are kept per block, and a window is the sum of
its ``size // step`` most recent blocks, so evaluating a window never rescans
raw rows.

>>> w = WindowSpec.parse({"kind": "count", "size": 5000, "step": 1000})
>>> w.blocks_per_window
5
>>> w.window_blocks(last_block=9)
range(5, 10)
>>> WindowSpec.parse({"kind": "time", "size": "1h", "step": "10m"}).step
600
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

WindowKind = Literal["count", "time"]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int) -> int:
    """Parse ``"90s"``, ``"10m"``, ``"1h"``, ``"2d"`` (or plain seconds) into seconds.

    >>> parse_duration("10m"), parse_duration("1h"), parse_duration(30)
    (600, 3600, 30)
    """
    if isinstance(text, bool):
        raise ValueError("a duration is a number of seconds or a string like '10m'")
    if isinstance(text, int):
        seconds = text
    else:
        match = _DURATION.match(text)
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration: use a whole number with a unit, like '90s', '10m', '1h' or '1d'"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of ``seconds``.

    >>> format_duration(600), format_duration(3600), format_duration(90)
    ('10m', '1h', '90s')
    """
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class WindowSpec:
    """A sliding window: ``size`` and ``step`` in records (count) or seconds (time).

    ``size`` must be a whole multiple of ``step``, so that a window is exactly a
    run of blocks.
    """

    kind: WindowKind
    size: int
    step: int

    def __post_init__(self) -> None:
        if self.kind not in ("count", "time"):
            raise ValueError("window kind must be 'count' or 'time'")
        if self.size <= 0 or self.step <= 0:
            raise ValueError("window size and step must be positive")
        if self.step > self.size:
            raise ValueError("window step cannot be larger than its size")
        if self.size % self.step != 0:
            raise ValueError(
                f"window size ({self.size}) must be a whole multiple of its step ({self.step})"
            )
        if self.size // self.step > 1000:
            raise ValueError("a window may span at most 1000 steps; use a larger step")

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> WindowSpec:
        """Build from the API's JSON shape (time sizes may be strings like ``"1h"``)."""
        kind = data.get("kind")
        if kind == "time":
            return cls("time", parse_duration(data["size"]), parse_duration(data["step"]))
        if kind == "count":
            size, step = data["size"], data["step"]
            if not isinstance(size, int) or not isinstance(step, int) or isinstance(size, bool):
                raise ValueError("count window size and step are whole numbers of records")
            return cls("count", size, step)
        raise ValueError("window kind must be 'count' or 'time'")

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON shape."""
        if self.kind == "time":
            return {
                "kind": "time",
                "size": format_duration(self.size),
                "step": format_duration(self.step),
            }
        return {"kind": "count", "size": self.size, "step": self.step}

    @property
    def blocks_per_window(self) -> int:
        return self.size // self.step

    def window_blocks(self, *, last_block: int) -> range:
        """The blocks of the window that ends with (and includes) ``last_block``."""
        first = max(0, last_block - self.blocks_per_window + 1)
        return range(first, last_block + 1)

    def blocks_of_sequence(self, seqs: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Block of each record, by its sequence number within the model (count windows)."""
        return np.floor_divide(seqs, self.step).astype(np.int64)

    def blocks_of_times(self, epoch_seconds: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Block of each timestamp, as seconds since the epoch (time windows)."""
        return np.floor_divide(epoch_seconds, self.step).astype(np.int64)

    def block_bounds(self, block: int) -> tuple[int, int]:
        """``[start, end)`` of a block, in records or epoch seconds."""
        return block * self.step, (block + 1) * self.step


def split_by_block(blocks: npt.NDArray[np.int64]) -> list[tuple[int, npt.NDArray[np.intp]]]:
    """Group row positions by block, in block order.

    >>> split_by_block(np.array([3, 3, 4, 3]))
    [(3, array([0, 1, 3])), (4, array([2]))]
    """
    if blocks.size == 0:
        return []
    order = np.argsort(blocks, kind="stable")
    sorted_blocks = blocks[order]
    cuts = np.flatnonzero(np.diff(sorted_blocks)) + 1
    groups = np.split(order, cuts)
    return [(int(blocks[g[0]]), g) for g in groups]
