"""The HTTP side of the exception queue: endpoints, schemas, views, metrics, training-data export."""
