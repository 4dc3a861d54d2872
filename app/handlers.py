"""Every module that subscribes to domain events (app.events), imported once."""
