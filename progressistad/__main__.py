"""`python -m progressistad` runs the daemon."""

import sys

from progressistad.daemon.main import main

if __name__ == "__main__":
    sys.exit(main())
