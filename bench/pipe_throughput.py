"""`progressista pipe` next to `cat` on the same pipeline: head -c SIZE /dev/zero | X | cat > /dev/null.

Usage: python bench/pipe_throughput.py [--mib 512] [--repeat 3] [--server-url URL] [--lines]

Without --server-url the pipe reports to a closed local port (copying costs the same).
Prints the best MiB/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def unused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def timed(command: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-c", command], env=env, check=True,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server-url", default=None)
    parser.add_argument("--lines", action="store_true", help="count lines (of a text stream)")
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    env = dict(os.environ, PYTHONPATH=str(REPO), PROGRESSISTA_SERVER_URL=args.server_url or unused_url())
    source = f"head -c {size} /dev/zero" if not args.lines else f"yes 'a line of text' | head -c {size}"
    pipe = f"{shlex.quote(sys.executable)} -m progressistad.client.cli pipe -q --total {size}"
    if args.lines:
        pipe += " --lines"
    best = {}
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        for name, middle in (("cat", "cat"), ("progressista pipe", pipe)):
            elapsed = timed(f"{source} | {middle} | cat > /dev/null", env)
            best[name] = min(best.get(name, float("inf")), elapsed)
        startup = timed(f"{pipe} < /dev/null > /dev/null", env)
        best["pipe startup"] = min(best.get("pipe startup", float("inf")), startup)
    for name in ("cat", "progressista pipe"):
        elapsed = best[name]
        print(f"{name:<18} {args.mib / elapsed:8.0f} MiB/s  ({elapsed:.3f} s for {args.mib} MiB)")
    copying = max(best["progressista pipe"] - best["pipe startup"], 1e-9)
    print(f"pipe startup (empty input): {best['pipe startup']:.3f} s; "
          f"copying alone: {args.mib / copying:.0f} MiB/s")
    print(f"pipe/cat throughput ratio: {best['cat'] / best['progressista pipe']:.2f} "
          f"(copying alone: {best['cat'] / copying:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
