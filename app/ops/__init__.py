"""Operations: health and readiness probes, Prometheus metrics, migrations, retention."""
