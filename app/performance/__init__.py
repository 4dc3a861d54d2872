"""Model performance: realized (ground truth), audited (reviewers' labels, design-weighted)
and estimated without labels, per window, with incidents and alerts (issue 15).

The estimators are pure (``monitors.performance``); this package stores their
per-block sums, keeps them up to date as labels arrive, and serves windows.
"""
