"""Drift in the service: evaluations of sliding windows, incidents, reports."""
