"""HTTP routers, one per resource of API.md. Thin: parse, authorise, call a service."""
