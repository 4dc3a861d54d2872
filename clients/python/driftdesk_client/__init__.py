"""driftdesk-client: report predictions to driftdesk from a deployed model."""
