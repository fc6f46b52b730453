"""progressistad: a push gateway for progress bars."""

__version__ = "0.3.0"
