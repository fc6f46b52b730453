"""%pyproject_install's stand-in: a wheel installed into an RPM build root at Fedora's paths."""

from __future__ import annotations

import argparse

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="the build root")
    parser.add_argument("--sitelib", required=True, help="site-packages, e.g. /usr/lib/python3.12/site-packages")
    parser.add_argument("wheel")
    args = parser.parse_args()
    scheme = {"purelib": args.sitelib, "platlib": args.sitelib, "scripts": "/usr/bin",
              "data": "/usr", "headers": "/usr/include"}
    destination = SchemeDictionaryDestination(scheme, interpreter="/usr/bin/python3",
                                              script_kind="posix", destdir=args.root)
    with WheelFile.open(args.wheel) as source:
        install(source, destination, additional_metadata={"INSTALLER": b"rpm\n"})


if __name__ == "__main__":
    main()
