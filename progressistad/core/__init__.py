"""Pure task rules and wire formats: no I/O, no clock, no Tornado."""
