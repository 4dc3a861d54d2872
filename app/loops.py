"""Every background loop driftdesk runs, registered with app.background.loop."""
