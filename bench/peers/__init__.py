"""Reference servers the bench runs beside ``seda serve`` (separate programs; see bench/README.md)."""
