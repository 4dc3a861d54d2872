"""Drift detectors on counts: one module each, registered by name and feature kind.

=================  ===========  ==============  =========================  =========
name               kinds        p-value         effect                     threshold
=================  ===========  ==============  =========================  =========
``ks``             numerical    KS on bins      normalised Wasserstein     0.1
``chi2``           both         chi-square      Jensen–Shannon distance    0.1
``gtest``          both         G-test          Jensen–Shannon distance    0.1
``psi``            both         —               PSI                        0.1
``jensen_shannon`` both         —               Jensen–Shannon distance    0.1
``wasserstein``    numerical    —               normalised Wasserstein     0.1
=================  ===========  ==============  =========================  =========

>>> available("categorical")
('chi2', 'gtest', 'jensen_shannon', 'psi')
>>> get_detector("ks").effect_name
'wasserstein'
"""

from monitors.detectors.base import (
    DEFAULT_ALPHA,
    Detector,
    DetectorResult,
    available,
    get_detector,
)
from monitors.detectors.chi2 import chi2
from monitors.detectors.gtest import gtest
from monitors.detectors.jensen_shannon import jensen_shannon
from monitors.detectors.ks import ks
from monitors.detectors.psi import psi
from monitors.detectors.wasserstein import wasserstein

AUTO: dict[str, str] = {"numerical": "ks", "categorical": "chi2"}
"""What ``detectors="auto"`` picks for each feature kind (see :mod:`monitors.drift`)."""

__all__ = [
    "AUTO",
    "DEFAULT_ALPHA",
    "Detector",
    "DetectorResult",
    "available",
    "chi2",
    "get_detector",
    "gtest",
    "jensen_shannon",
    "ks",
    "psi",
    "wasserstein",
]
