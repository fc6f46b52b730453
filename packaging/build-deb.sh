#!/usr/bin/env bash
# Build progressistad_<version>_all.deb with dpkg-buildpackage from a copy of
# the source tree (debian/ must sit at the source root; the checkout keeps it
# under packaging/debian/). usage: packaging/build-deb.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' progressistad/__init__.py)
changelog_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ "$version" != "$changelog_version" ]; then
  echo "build-deb: progressistad/__init__.py says $version but packaging/debian/changelog says $changelog_version" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/progressistad-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/progressistad-$version"
mkdir -p "$src" "$out"
tar -c --exclude-vcs --exclude='./.venv*' --exclude=./build --exclude=./dist --exclude=./var \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=node_modules --exclude=./tests/artifacts . \
  | tar -x -C "$src"
cp -a packaging/debian "$src/debian"
# Debian tools on the system Python only, never a pyenv or venv one on PATH.
(cd "$src" && env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage --no-sign -b >"$work/build.log" 2>&1) || {
  tail -n 60 "$work/build.log" >&2
  exit 1
}
cp "$work"/progressistad_"$version"_all.deb "$work"/progressistad_"$version"_*.changes \
   "$work"/progressistad_"$version"_*.buildinfo "$out"/
echo "$out/progressistad_${version}_all.deb"
