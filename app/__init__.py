"""driftdesk: the service shell."""
