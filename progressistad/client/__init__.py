"""The progressistad client: RemoteTqdm, a drop-in tqdm that reports to the daemon.

Imports only the standard library and tqdm.
"""

from progressistad.client.remote import RemoteTqdm, RemoteTqdmMixin, make_remote_tqdm
from progressistad.client.sender import flush

__all__ = ["RemoteTqdm", "RemoteTqdmMixin", "make_remote_tqdm", "flush"]
