"""driftdesk.monitors: the statistics of drift detection, as a small pure library.

Numpy arrays in, frozen dataclasses out; no I/O, no clock, no database.
"""
