"""Every module that subscribes to domain events (app.events), imported once."""

import app.alerting.handlers  # noqa: F401
import exceptions_queue.handlers  # noqa: F401
