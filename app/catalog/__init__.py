"""The catalog: the monitored ML models and the API keys."""
