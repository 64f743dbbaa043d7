"""The HTTP API: thin route handlers over `fraudsvc.pipeline`, plus errors, security, middleware."""
