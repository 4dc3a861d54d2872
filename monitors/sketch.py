"""Sketches: fixed bins fitted on the reference, and counts that merge by addition.

A :class:`SketchSpec` is fitted once, when a model's reference is set. It fixes,
for every feature, the counters a batch of rows is tallied into:

* a **numerical** feature gets bin edges at the reference quantiles (``n_bins``
  bins, fewer where ties collapse edges), an *underflow* counter for values
  below the reference minimum, an *overflow* counter for values above its
  maximum, and a *missing* counter (NaN);
* a **categorical** feature gets the reference categories (most frequent first,
  at most ``max_categories``), an *other* counter for anything else, and a
  *missing* counter (None).

The counts of a batch are one flat ``int64`` vector of length ``spec.size``.
Counts of disjoint batches add up to the counts of their union, so a window is
the sum of its blocks and several writers can each keep partial counts.

Counter layout of one feature (see :meth:`SketchSpec.feature_slice`)::

    numerical:    [underflow, bin_0, ..., bin_{m-1}, overflow, missing]
    categorical:  [category_0, ..., category_{k-1}, other, missing]

Numerical bin ``i`` is ``[edges[i], edges[i + 1])``. The last edge sits just
above the reference maximum (the next float), so the maximum has a bin of its
own and every distinct value of a feature with few values (binary flags, small
counts, a constant) gets its own bin: ties never hide a change in their mass.

>>> import numpy as np
>>> columns = {
...     "age": np.array([20.0, 30.0, 40.0, 50.0, np.nan]),
...     "plan": np.array(["free", "pro", "free", None, "free"], dtype=object),
... }
>>> spec = SketchSpec.fit(columns, {"age": "numerical", "plan": "categorical"}, n_bins=4)
>>> spec.feature("age").labels
('< 20', '[20, 30)', '[30, 40)', '[40, 50)', '[50, 50]', '> 50')
>>> spec.feature("plan").categories
('free', 'pro')
>>> counts = spec.count(columns)
>>> counts[spec.feature_slice("age")].tolist()
[0, 1, 1, 1, 1, 0, 1]
>>> counts[spec.feature_slice("plan")].tolist()
[3, 1, 0, 1]
>>> batch = {"age": np.array([10.0, 60.0]), "plan": np.array(["team", "pro"], dtype=object)}
>>> merged = counts + spec.count(batch)
>>> merged[spec.feature_slice("plan")].tolist()
[3, 2, 1, 1]
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FeatureKind = Literal["numerical", "categorical"]
Counts = npt.NDArray[np.int64]

OTHER_LABEL = "(other)"
"""How the catch-all categorical counter is labelled for display."""

_FORMAT_VERSION = 1
_NONE = np.array([None], dtype=object)
_STR_OR_NONE = frozenset({str, type(None)})  # compares elementwise against object arrays


@dataclass(frozen=True)
class FeatureSketch:
    """The counters of one feature.

    Parameters
    ----------
    name : str
        Feature name.
    kind : {"numerical", "categorical"}
        Feature kind.
    edges : tuple of float
        Numerical only: strictly increasing bin edges (at least two).
    categories : tuple of str
        Categorical only: the reference categories, most frequent first.
    """

    name: str
    kind: FeatureKind
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a feature name is a non-empty string")
        if self.kind == "numerical":
            if self.categories:
                raise ValueError(f"numerical feature {self.name!r} cannot have categories")
            edges = np.asarray(self.edges, dtype=np.float64)
            if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
                raise ValueError(
                    f"numerical feature {self.name!r} needs at least two finite, "
                    "strictly increasing bin edges"
                )
        elif self.kind == "categorical":
            if self.edges:
                raise ValueError(f"categorical feature {self.name!r} cannot have bin edges")
            if not all(isinstance(c, str) for c in self.categories):
                raise ValueError(f"categories of {self.name!r} must be strings")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"categories of {self.name!r} must be distinct")
        else:
            raise ValueError(
                f"feature kind must be 'numerical' or 'categorical', not {self.kind!r}"
            )

    @property
    def n_value_counters(self) -> int:
        """Counters for present values (everything but the missing counter)."""
        if self.kind == "numerical":
            return len(self.edges) + 1  # (len - 1) bins + underflow + overflow
        return len(self.categories) + 1  # categories + other

    @property
    def size(self) -> int:
        """All counters of this feature, the missing counter included."""
        return self.n_value_counters + 1

    @property
    def labels(self) -> tuple[str, ...]:
        """A display label for each value counter (not the missing counter)."""
        if self.kind == "categorical":
            return (*self.categories, OTHER_LABEL)
        e = self.edges
        inner = tuple(f"[{e[i]:.6g}, {e[i + 1]:.6g})" for i in range(len(e) - 2))
        last = f"[{e[-2]:.6g}, {e[-1]:.6g}]"
        return (f"< {e[0]:.6g}", *inner, last, f"> {e[-1]:.6g}")

    def count(self, values: npt.ArrayLike | None, n_rows: int) -> Counts:
        """Counts of one column (``None``: the feature is absent, all rows missing)."""
        out = np.zeros(self.size, dtype=np.int64)
        if values is None:
            out[-1] = n_rows
            return out
        if self.kind == "numerical":
            codes = self._numerical_codes(values)
        else:
            codes = self._categorical_codes(values)
        if codes.size != n_rows:
            raise ValueError(f"column {self.name!r} has {codes.size} rows, expected {n_rows}")
        out += np.bincount(codes, minlength=self.size).astype(np.int64)
        return out

    def codes(self, values: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Each value's counter: an index into this feature's counts (missing last).

        >>> x = FeatureSketch("x", "numerical", edges=(0.0, 1.0))
        >>> x.codes([-1.0, 0.5, 2.0, np.nan]).tolist()
        [0, 1, 2, 3]
        """
        if self.kind == "numerical":
            return self._numerical_codes(values)
        return self._categorical_codes(values)

    def _numerical_codes(self, values: npt.ArrayLike) -> npt.NDArray[np.intp]:
        x = np.asarray(values, dtype=np.float64).ravel()
        edges = np.asarray(self.edges, dtype=np.float64)
        m = edges.size - 1  # interior bins
        # side="right": 0 below edges[0]; i + 1 inside [edges[i], edges[i+1]); m + 1 at or
        # above edges[-1], which is just above the reference maximum.
        codes = np.searchsorted(edges, x, side="right")
        codes[np.isnan(x)] = m + 2
        return codes

    @functools.cached_property
    def _codes_of_str(self) -> dict[str | None, int]:
        """Counter of each reference category, and of ``None`` (missing)."""
        k = len(self.categories)
        return {**{c: i for i, c in enumerate(self.categories)}, None: k + 1}

    def _categorical_codes(self, values: npt.ArrayLike) -> npt.NDArray[np.intp]:
        x = np.asarray(values, dtype=object).ravel()
        k = len(self.categories)
        items = x.tolist()
        if set(map(type, items)) <= _STR_OR_NONE:
            # the usual batch: one dictionary lookup per row, no sort of the strings
            get = self._codes_of_str.get
            return np.fromiter(
                map(get, items, itertools.repeat(k, len(items))), dtype=np.intp, count=len(items)
            )
        codes = np.full(x.size, k + 1, dtype=np.intp)  # missing unless present
        present = ~_missing(x)
        if not present.any():
            return codes
        try:
            uniques, inverse = np.unique(x[present], return_inverse=True)
        except TypeError as exc:
            raise TypeError(
                f"categorical column {self.name!r} must hold str (or None for missing)"
            ) from exc
        index = {c: i for i, c in enumerate(self.categories)}
        # One dictionary lookup per distinct value, not per row.
        lookup = np.array(
            [k + 1 if _is_nan(u) else index.get(str(u), k) for u in uniques], dtype=np.intp
        )
        codes[present] = lookup[inverse.ravel()]
        return codes


def _missing(x: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
    """None, or a float NaN (how pandas spells a missing object value), elementwise."""
    # x != x is True only for NaN; both comparisons run in C, not a Python loop.
    out: npt.NDArray[np.bool_] = np.equal(x, _NONE).astype(bool) | np.not_equal(x, x).astype(bool)
    return out


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass(frozen=True)
class SketchSpec:
    """The fixed counters of a model's features, fitted on its reference.

    Build with :meth:`fit` (or :meth:`from_dict`); tally rows with :meth:`count`.

    >>> import numpy as np
    >>> spec = SketchSpec.fit({"x": np.arange(100.0)}, {"x": "numerical"}, n_bins=10)
    >>> spec.names, spec.size
    (('x',), 14)
    >>> spec.feature_slice("x")
    slice(0, 14, None)
    """

    features: tuple[FeatureSketch, ...]
    _offsets: dict[str, tuple[int, int]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for feature in self.features:
            if feature.name in offsets:
                raise ValueError(f"duplicate feature {feature.name!r}")
            offsets[feature.name] = (start, start + feature.size)
            start += feature.size
        object.__setattr__(self, "_offsets", offsets)

    @classmethod
    def fit(
        cls,
        columns: Mapping[str, npt.ArrayLike],
        kinds: Mapping[str, FeatureKind],
        *,
        n_bins: int = 256,
        max_categories: int = 200,
    ) -> SketchSpec:
        """Fit the counters of every feature in ``kinds`` on reference columns.

        Parameters
        ----------
        columns : mapping of str to array
            Reference columns: float arrays (NaN for missing) for numerical
            features, object arrays of str (None for missing) for categorical ones.
        kinds : mapping of str to {"numerical", "categorical"}
            The features, in the order their counters are laid out.
        n_bins : int, default 256
            Numerical bins between the reference minimum and maximum, at the
            reference quantiles. Tied quantiles are merged, so a feature with
            few distinct values gets fewer bins; a constant one gets one bin.
        max_categories : int, default 200
            Most frequent reference categories kept; the rest count as "other".

        Returns
        -------
        SketchSpec

        Examples
        --------
        >>> import numpy as np
        >>> spec = SketchSpec.fit(
        ...     {"n": np.array([1.0, 1.0, 1.0, 2.0]), "c": np.array(["a", "b", "b"], dtype=object)},
        ...     {"n": "numerical", "c": "categorical"},
        ... )
        >>> spec.feature("n").edges[:2], spec.feature("c").categories
        ((1.0, 2.0), ('b', 'a'))
        >>> bool(spec.feature("n").edges[2] == np.nextafter(2.0, np.inf))  # closes the top bin
        True
        """
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise ValueError("n_bins must be a positive integer")
        if isinstance(max_categories, bool) or not isinstance(max_categories, int):
            raise ValueError("max_categories must be a positive integer")
        if max_categories < 1:
            raise ValueError("max_categories must be a positive integer")
        features: list[FeatureSketch] = []
        for name, kind in kinds.items():
            values = columns.get(name)
            if kind == "numerical":
                features.append(FeatureSketch(name, kind, edges=_quantile_edges(values, n_bins)))
            elif kind == "categorical":
                categories = _top_categories(values, max_categories)
                features.append(FeatureSketch(name, kind, categories=categories))
            else:
                raise ValueError(f"feature kind must be 'numerical' or 'categorical', not {kind!r}")
        return cls(tuple(features))

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names, in counter order."""
        return tuple(f.name for f in self.features)

    @property
    def kinds(self) -> dict[str, FeatureKind]:
        """Kind of each feature."""
        return {f.name: f.kind for f in self.features}

    @property
    def size(self) -> int:
        """Total number of counters (the length of a counts vector)."""
        return sum(f.size for f in self.features)

    def feature(self, name: str) -> FeatureSketch:
        """The counters of one feature (bin edges or category labels, for drawing)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"unknown feature {name!r}")

    def feature_slice(self, name: str) -> slice:
        """Where a feature's counters (missing counter last) sit in a counts vector."""
        try:
            start, stop = self._offsets[name]
        except KeyError:
            raise KeyError(f"unknown feature {name!r}") from None
        return slice(start, stop)

    def split(self, name: str, counts: npt.ArrayLike) -> tuple[Counts, int]:
        """A feature's value counters and its missing count, from a full counts vector.

        >>> import numpy as np
        >>> spec = SketchSpec.fit({"c": np.array(["a", None], dtype=object)}, {"c": "categorical"})
        >>> spec.split("c", spec.count({"c": np.array(["a", "z", None], dtype=object)}))
        (array([1, 1]), 1)
        """
        c = self._check_counts(counts)[self.feature_slice(name)]
        return c[:-1], int(c[-1])

    def rows(self, counts: npt.ArrayLike) -> int:
        """Rows tallied into ``counts`` (every feature counts every row once)."""
        c = self._check_counts(counts)
        if not self.features:
            return 0
        return int(c[self.feature_slice(self.features[0].name)].sum())

    def count(self, columns: Mapping[str, npt.ArrayLike]) -> Counts:
        """Tally a batch of rows into a fresh counts vector.

        A feature absent from ``columns`` counts as missing on every row.
        Columns not in the spec are ignored. All present columns must have the
        same length.

        >>> import numpy as np
        >>> spec = SketchSpec.fit({"x": np.array([0.0, 1.0])}, {"x": "numerical"}, n_bins=1)
        >>> spec.feature("x").labels
        ('< 0', '[0, 1)', '[1, 1]', '> 1')
        >>> spec.count({"x": np.array([-1.0, 0.5, 1.0, 2.0, np.nan])}).tolist()
        [1, 1, 1, 1, 1]
        >>> spec.count({"other": np.zeros(3)}).tolist()
        [0, 0, 0, 0, 3]
        """
        lengths = {np.asarray(columns[f.name]).size for f in self.features if f.name in columns}
        if not lengths:
            lengths = {np.asarray(v).size for v in columns.values()} or {0}
        if len(lengths) != 1:
            raise ValueError("all columns of a batch must have the same number of rows")
        n_rows = lengths.pop()
        parts = [f.count(columns.get(f.name), n_rows) for f in self.features]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(parts)

    def histogram(self, name: str, counts: npt.ArrayLike) -> dict[str, Any]:
        """What a UI needs to draw one feature from counts (JSON-safe).

        Numerical features give ``edges`` plus ``underflow``/``overflow`` counts
        beside the per-bin ``counts``; categorical ones give ``labels`` (the last
        is "other") aligned with ``counts``.

        >>> import numpy as np
        >>> spec = SketchSpec.fit({"x": np.array([0.0, 4.0])}, {"x": "numerical"}, n_bins=1)
        >>> h = spec.histogram("x", spec.count({"x": np.array([0.5, 3.0, 9.0, np.nan])}))
        >>> h["counts"], h["underflow"], h["overflow"], h["missing"]
        ([2, 0], 0, 1, 1)
        """
        f = self.feature(name)
        values, missing = self.split(name, counts)
        if f.kind == "numerical":
            return {
                "kind": "numerical",
                "edges": list(f.edges),
                "counts": [int(v) for v in values[1:-1]],
                "underflow": int(values[0]),
                "overflow": int(values[-1]),
                "missing": missing,
            }
        return {
            "kind": "categorical",
            "labels": list(f.labels),
            "counts": [int(v) for v in values],
            "missing": missing,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description; :meth:`from_dict` rebuilds an equal spec.

        >>> import numpy as np
        >>> import json
        >>> spec = SketchSpec.fit({"x": np.arange(5.0)}, {"x": "numerical"}, n_bins=2)
        >>> spec.to_dict()["features"][0]["edges"][:3]
        [0.0, 2.0, 4.0]
        >>> SketchSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
        True
        """
        features: list[dict[str, Any]] = []
        for f in self.features:
            if f.kind == "numerical":
                features.append({"name": f.name, "kind": f.kind, "edges": list(f.edges)})
            else:
                features.append({"name": f.name, "kind": f.kind, "categories": list(f.categories)})
        return {"version": _FORMAT_VERSION, "features": features}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SketchSpec:
        """Rebuild a spec from :meth:`to_dict` output (validated)."""
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(f"unsupported sketch format version {data.get('version')!r}")
        features: list[FeatureSketch] = []
        for item in data.get("features", []):
            kind = item.get("kind")
            if kind == "numerical":
                edges = tuple(float(e) for e in item["edges"])
                features.append(FeatureSketch(item["name"], "numerical", edges=edges))
            elif kind == "categorical":
                categories = tuple(item["categories"])
                features.append(FeatureSketch(item["name"], "categorical", categories=categories))
            else:
                raise ValueError(f"feature kind must be 'numerical' or 'categorical', not {kind!r}")
        return cls(tuple(features))

    def _check_counts(self, counts: npt.ArrayLike) -> Counts:
        c = np.asarray(counts)
        if c.shape != (self.size,):
            raise ValueError(f"counts must have shape ({self.size},), not {c.shape}")
        return c.astype(np.int64, copy=False)


def _quantile_edges(values: npt.ArrayLike | None, n_bins: int) -> tuple[float, ...]:
    x = np.asarray(values if values is not None else [], dtype=np.float64).ravel()
    x = x[np.isfinite(x)]  # NaN is missing; +-inf land in the outer counters
    if x.size == 0:
        # No reference values: one bin at 0 keeps the layout valid; every live
        # value is then under- or overflow, which the detectors see as a change.
        return (0.0, float(np.nextafter(0.0, 1.0)))
    # Tied quantiles collapse into one edge (no empty, zero-width bins); the
    # closing edge just above the maximum gives the maximum its own bin, so a
    # constant column gets exactly one bin holding the constant.
    # "inverted_cdf" quantiles are observed values, so a discrete feature gets
    # its own values as edges rather than interpolated points between them.
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1), method="inverted_cdf"))
    top = np.nextafter(edges[-1], np.inf)
    return (*(float(e) for e in edges), float(top))


def _top_categories(values: npt.ArrayLike | None, max_categories: int) -> tuple[str, ...]:
    if values is None:
        return ()
    x = np.asarray(values, dtype=object).ravel()
    x = x[~_missing(x)]
    if x.size == 0:
        return ()
    try:
        uniques, counts = np.unique(x, return_counts=True)
    except TypeError as exc:
        raise TypeError("categorical columns must hold str (or None for missing)") from exc
    keep = [(int(n), str(u)) for u, n in zip(uniques, counts, strict=True) if not _is_nan(u)]
    # Most frequent first; ties by label, so a refit on the same data is identical.
    keep.sort(key=lambda t: (-t[0], t[1]))
    return tuple(label for _, label in keep[:max_categories])
