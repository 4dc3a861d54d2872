"""`driftdesk demo`: a simulation against a running server, imported lazily by the CLI."""
