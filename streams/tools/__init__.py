"""Tools: the CLI, the embedded runtime and process helpers, replay, pacing, demo, tail,
evaluation commands. Only the CLI imports these; the worker and serving never do."""
