"""The Quart-Trio REST app."""
