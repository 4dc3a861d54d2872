"""driftdesk exception queue: tickets, leases, labels and the retraining export."""
