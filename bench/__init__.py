"""The load harness: speaks only PROTOCOL.md and the REST API."""
