"""driftdesk exception queue: tickets, leases, labels and the retraining export.

Imports only storage/ (the database base and core tables) and monitors/; the
HTTP side (endpoints, schemas, views, metrics) is app/tickets/.
"""
