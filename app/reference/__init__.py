"""Reference data: the baseline each monitored ML model's drift is judged against."""
