"""What a worker process runs: groups of sockets (or REST clients) with one job each."""
