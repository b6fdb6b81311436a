"""The live WebSocket gateway."""
