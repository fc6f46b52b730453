"""Shared state in Redis for several daemons; imported only with --redis-url."""
