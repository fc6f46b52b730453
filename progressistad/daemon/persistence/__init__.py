"""The state file: loaded at start, kept in step with the task store, written at stop.

Writes are debounced (at most one per persist interval), atomic (temporary
file in the same directory, fsync, rename, fsync of the directory), mode 0600,
and done by one worker thread, which encodes again only the tasks that changed
(taking the entries a snapshot already made). A failed write (disk full,
read-only directory) keeps the state in memory, is logged once, reported in
/health and retried until the disk takes it again. A file that cannot be
parsed is moved aside, never overwritten.

`persister` keeps the file in step with the store, from these pieces: `loading`
(the file into the store at start), `writer` (the writer thread and the entries
it last wrote), `schedule` (when the next write may start, backing off while
writes fail), `health` (how writes fare, for /health and STATUS=) and `files`
(atomic replacement, moving a file aside).
"""

import logging

log = logging.getLogger("progressistad.persistence")
"""The logger of every piece of persistence: its name is what the journal shows."""
