"""The process: configuration, start and stop, systemd, logging, the state file."""
