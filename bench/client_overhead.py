"""Cost of RemoteTqdm next to plain tqdm, per update(1), per iteration, and per update(1) with postfix.

Usage: python bench/client_overhead.py [--server-url URL] [--n N] [--repeat R]

Both bars render to /dev/null with tqdm's defaults. Without --server-url the
remote bars report to a local port where nothing listens, which costs the loop
the same (the sender thread does the reporting either way). Prints each
best-of-R time per call and the ratio remote/plain; the targets are at most
1.5x per update(1) and 1.3x per iteration. The third case is a training loop:
update(1) with set_postfix(loss=..., acc=...) every POSTFIX_EVERY calls, which
RemoteTqdm forwards as `metrics` and `postfix` (target 1.5x, as update(1)). When the earlier build's client
(PyPI progressista 0.2.1) is importable, e.g. with `.venv-compat/bin/python`
(made by the compatibility test), its ratio is printed too.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from progressistad.client import RemoteTqdm  # noqa: E402

TARGETS = {"update(1)": 1.5, "iteration": 1.3, "postfix": 1.5}
POSTFIX_EVERY = 100


def unused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/progress"


def time_updates(make, n: int) -> float:
    with open(os.devnull, "w") as sink:
        bar = make(total=n, file=sink)
        update = bar.update
        start = time.perf_counter()
        for _ in range(n):
            update(1)
        elapsed = time.perf_counter() - start
        bar.close()
    return elapsed / n


def time_postfix(make, n: int) -> float:
    with open(os.devnull, "w") as sink:
        bar = make(total=n, file=sink)
        update, set_postfix = bar.update, bar.set_postfix
        start = time.perf_counter()
        for i in range(n):
            update(1)
            if i % POSTFIX_EVERY == 0:
                set_postfix(loss=1.0 / (i + 1), acc=i / n)
        elapsed = time.perf_counter() - start
        bar.close()
    return elapsed / n


def time_iteration(make, n: int) -> float:
    with open(os.devnull, "w") as sink:
        start = time.perf_counter()
        for _ in make(range(n), file=sink):
            pass
        elapsed = time.perf_counter() - start
    return elapsed / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default=None, help="a running daemon (default: a closed port)")
    parser.add_argument("--n", type=int, default=1_000_000, help="calls per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per case; the best counts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    url = args.server_url or unused_url()

    def remote(*a, **kw):
        return RemoteTqdm(*a, server_url=url, **kw)

    old = old_client(url)
    print(f"{'case':<10} {'tqdm ns':>9} {'remote ns':>10} {'ratio':>6} {'target':>7}"
          + ("  0.2.1 ratio" if old else ""))
    worst = 0.0
    for name, measure in (("update(1)", time_updates), ("iteration", time_iteration),
                          ("postfix", time_postfix)):
        plain_t = remote_t = float("inf")
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            plain_t = min(plain_t, measure(tqdm, args.n))
            remote_t = min(remote_t, measure(remote, args.n))
        ratio = remote_t / plain_t
        worst = max(worst, ratio / TARGETS[name])
        line = f"{name:<10} {plain_t * 1e9:9.1f} {remote_t * 1e9:10.1f} {ratio:6.2f} {TARGETS[name]:6.1f}x"
        if old:
            line += f"  {measure(old, args.n // 10) / plain_t:11.1f}"
        print(line)
    return 0 if worst <= 1.0 else 1


def old_client(url: str):
    """The earlier build's RemoteTqdm bound to `url`, if it is installed here."""
    try:
        from progressista.client import RemoteTqdm as OldRemoteTqdm
    except ImportError:
        return None

    def make(*a, **kw):
        return OldRemoteTqdm(*a, server_url=url, request_timeout=0.1, **kw)
    return make


if __name__ == "__main__":
    sys.exit(main())
