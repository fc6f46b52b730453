"""The `progressista` command: `serve` runs the daemon; the client subcommands live beside it."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

USAGE = """usage: progressista COMMAND [ARGS]

commands:
  serve     run the progressistad daemon (same options as `progressistad`)
"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "serve":
        from progressistad.daemon import main as serve

        return serve(rest)
    print(f"progressista: unknown command {command!r}\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":
    sys.exit(main())
