"""Kafka/Faust side: ``worker/`` (consume, apply, publish), ``serving/`` (HTTP, dashboard,
metrics), ``tools/`` (CLI, embedded runtime, replay, demo). ``schemas`` and ``settings`` are
shared by all three."""
