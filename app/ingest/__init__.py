"""The ingest domain: predictions and feedback in, validated, stored, and handed to the flows."""
