"""Room state machines (pure) and the trio tasks that run them."""
