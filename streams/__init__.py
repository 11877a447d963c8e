"""Kafka/Faust side: app, topics, agents, web views, CLI, embedded runtime."""
