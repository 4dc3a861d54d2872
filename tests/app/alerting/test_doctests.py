"""The examples in the alerting modules' docstrings are part of the test suite."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "app.alerting.message",
    "app.alerting.signing",
    "app.alerting.outcome",
    "app.alerting.targets",
    "app.alerting.slack",
    "app.alerting.email",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
