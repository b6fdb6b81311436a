"""Many processes and machines: leases, the bus between nodes, edges, and `--workers N`."""
