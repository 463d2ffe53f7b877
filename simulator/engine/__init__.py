"""Running scenarios: the Monte-Carlo runner, the sweep (planning, resuming, writing), executors, progress."""
