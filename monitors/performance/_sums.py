"""The arithmetic every block-summable sums object shares: add, subtract, JSON.

A sums object is a frozen dataclass whose numeric fields are numpy arrays (or
plain numbers) that add element-wise, plus "shape" fields (such as the index
of the positive class) that must be equal for two objects to add up.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt


class Additive:
    """``merge``, ``+``, ``sum(...)`` and ``-`` in terms of one ``_combine(other, sign)``."""

    def _combine(self, other: object, sign: float) -> Self:
        raise NotImplementedError

    def merge(self, other: Self) -> Self:
        """The sums of the union of both batches (same as ``self + other``)."""
        return self._combine(other, 1.0)

    def __add__(self, other: Self) -> Self:
        return self._combine(other, 1.0)

    def __radd__(self, other: object) -> Self:
        # lets ``sum(blocks)`` start from 0
        if isinstance(other, int) and other == 0:
            return self
        return self._combine(other, 1.0)

    def __sub__(self, other: Self) -> Self:
        return self._combine(other, -1.0)


class Summable(Additive):
    """Mixin for frozen dataclasses of additive fields.

    Subclasses list their non-additive fields in ``_shape_fields``; every other
    field is a numpy float array (or a number) that adds element-wise.
    """

    _kind: ClassVar[str]
    _shape_fields: ClassVar[tuple[str, ...]] = ()

    def _additive(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if f.name not in self._shape_fields]  # type: ignore[arg-type]

    def _combine(self, other: object, sign: float) -> Self:
        if type(other) is not type(self):
            raise ValueError(
                f"cannot combine {type(self).__name__} with {type(other).__name__}: "
                "only sums of the same kind add up"
            )
        changes: dict[str, Any] = {}
        for name in self._shape_fields:
            if getattr(self, name) != getattr(other, name):
                raise ValueError(
                    f"cannot combine {type(self).__name__} objects with different {name} "
                    f"({getattr(self, name)!r} and {getattr(other, name)!r}): "
                    "they were made with different specs"
                )
        for name in self._additive():
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, np.ndarray):
                if a.shape != b.shape:
                    raise ValueError(
                        f"cannot combine {type(self).__name__} objects: {name} has shape "
                        f"{a.shape} and {b.shape}; they were made with different specs"
                    )
                changes[name] = a + sign * b
            else:
                changes[name] = a + sign * b
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; inverse of ``from_json``.

        Arrays are stored as ``{"shape": [...], "f8": base64 of little-endian
        float64}``: a window reads hundreds of these documents, and parsing one
        string per array is far cheaper than parsing hundreds of numbers.
        """
        out: dict[str, Any] = {"kind": self._kind, "version": 1}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = _encode(value) if isinstance(value, np.ndarray) else value
        return out

    @classmethod
    def sum_json(cls, documents: Sequence[dict[str, Any]]) -> Self:
        """The sum of many :meth:`to_json` documents at once (a window's blocks).

        One numpy sum per field instead of one object per block: reading a
        window of 1,000 blocks is a few milliseconds.
        """
        if not documents:
            raise ValueError(f"no {cls.__name__} documents to add up")
        first = cls.from_json(documents[0])
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in cls._shape_fields:
                for doc in documents:
                    if _field(doc, f) != getattr(first, f.name):
                        raise ValueError(
                            f"cannot add {cls.__name__} documents with different {f.name}"
                        )
                values[f.name] = getattr(first, f.name)
            else:
                if isinstance(getattr(first, f.name), np.ndarray):
                    values[f.name] = _sum_arrays([doc[f.name] for doc in documents])
                else:
                    values[f.name] = float(sum(_field(doc, f) for doc in documents))
        for doc in documents:
            if doc.get("kind") != cls._kind:
                raise ValueError(f"not a {cls.__name__}: kind is {doc.get('kind')!r}")
        return cls(**values)

    @classmethod
    def sum_all(cls, items: Sequence[Self]) -> Self:
        """The sum of many decoded sums at once: one accumulation per field, no
        intermediate objects (a window of cached blocks)."""
        if not items:
            raise ValueError(f"no {cls.__name__} to add up")
        first = items[0]
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            value = getattr(first, f.name)
            if f.name in cls._shape_fields:
                if any(getattr(item, f.name) != value for item in items):
                    raise ValueError(f"cannot add {cls.__name__} sums with different {f.name}")
                values[f.name] = value
            elif isinstance(value, np.ndarray):
                total = value.copy()
                for item in items[1:]:
                    other = getattr(item, f.name)
                    if other.shape != total.shape:
                        raise ValueError(f"cannot add {cls.__name__} sums: {f.name} shapes differ")
                    total += other
                values[f.name] = total
            else:
                values[f.name] = float(sum(getattr(item, f.name) for item in items))
        return cls(**values)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Rebuild from :meth:`to_json`'s dict."""
        if data.get("kind") != cls._kind:
            raise ValueError(
                f"not a {cls.__name__}: kind is {data.get('kind')!r}, expected {cls._kind!r}"
            )
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            raw = _field(data, f)
            values[f.name] = _decode(raw) if isinstance(raw, (list, dict)) else raw
        return cls(**values)


def _field(data: dict[str, Any], f: dataclasses.Field[Any]) -> Any:
    """A field's stored value; a field added later reads as its default in older documents."""
    if f.name in data:
        return data[f.name]
    if f.default is not dataclasses.MISSING:
        return f.default
    raise ValueError(f"JSON lacks the field {f.name!r}")


def _encode(array: npt.NDArray[np.float64]) -> dict[str, Any]:
    data = np.ascontiguousarray(array, dtype="<f8").tobytes()
    return {"shape": list(array.shape), "f8": base64.b64encode(data).decode("ascii")}


def _decode(raw: Any) -> npt.NDArray[np.float64]:
    """An array from :func:`_encode`'s form, or from nested lists."""
    if isinstance(raw, dict):
        flat = np.frombuffer(base64.b64decode(raw["f8"]), dtype="<f8")
        return np.asarray(flat.reshape(tuple(raw["shape"])), dtype=np.float64)
    return np.asarray(raw, dtype=np.float64)


def _sum_arrays(raws: list[Any]) -> npt.NDArray[np.float64]:
    """The sum of many encoded arrays of one shape: one buffer, one numpy sum."""
    if all(isinstance(r, dict) for r in raws):
        shapes = {tuple(r["shape"]) for r in raws}
        if len(shapes) != 1:
            raise ValueError(f"cannot add arrays of different shapes {sorted(shapes)}")
        shape = shapes.pop()
        data = b"".join(base64.b64decode(r["f8"]) for r in raws)
        stacked = np.frombuffer(data, dtype="<f8").reshape((len(raws), *shape))
        return np.asarray(stacked.sum(axis=0), dtype=np.float64)
    arrays = [_decode(r) for r in raws]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("cannot add arrays of different shapes")
    return np.asarray(np.sum(arrays, axis=0), dtype=np.float64)
