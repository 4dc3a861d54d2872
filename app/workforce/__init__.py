"""Workforce: the review queue measured and forecast, and the staffing it needs."""
