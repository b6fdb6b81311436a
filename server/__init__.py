"""Process wiring: config, CLI, the live gateway, the REST app, auth, metrics."""
