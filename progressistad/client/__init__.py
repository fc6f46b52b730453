"""The progressistad client: RemoteTqdm, a drop-in tqdm that reports to the daemon.

Imports only the standard library and tqdm, and tqdm only when RemoteTqdm is
used, so `progressista send` and friends start quickly.
"""

from typing import Any

__all__ = ["RemoteTqdm", "RemoteTqdmMixin", "make_remote_tqdm", "flush", "LogHandler"]


def __getattr__(name: str) -> Any:
    if name in ("RemoteTqdm", "RemoteTqdmMixin", "make_remote_tqdm"):
        from progressistad.client import remote

        return getattr(remote, name)
    if name == "LogHandler":
        from progressistad.client.loghandler import LogHandler

        return LogHandler
    if name == "flush":
        from progressistad.client.sender import flush

        return flush
    raise AttributeError(f"module 'progressistad.client' has no attribute {name!r}")
