#!/usr/bin/env bash
# CPython 3.13 into .tools/python3.13, for the Django client's tests under Django 6.1,
# which needs Python 3.12 or later (the machine's own is 3.11, and no registry this
# project installs from carries a built 3.12 or later for it).
#
# The source is CPython 3.13.5's release tarball as Debian trixie carries it (the
# upstream archive, with upstream's signature beside it), pinned by its SHA-256. It is
# built at -O1 and without the modules the tests never import (Tk, curses, readline,
# dbm, the test modules): 2 min 16 s on 2 cores, against 4 min 41 s at the default -O3
# with every module. `.built` is written last: an interrupted or failed build is redone.
set -euo pipefail
URL=http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz
SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
PREFIX=$(cd "$(dirname "$0")/.." && pwd)/.tools/python3.13
NEEDS=(gcc make libssl-dev libsqlite3-dev zlib1g-dev libbz2-dev liblzma-dev libffi-dev)

if command -v dpkg-query >/dev/null; then
    missing=()
    for package in "${NEEDS[@]}"; do
        dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "python.sh: CPython's build needs ${missing[*]}: apt-get install them" >&2
        exit 1
    fi
fi

rm -rf "$PREFIX"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
curl -fsS --retry 3 -o "$WORK/source.tar.xz" "$URL"
echo "$SHA256  $WORK/source.tar.xz" | sha256sum --check --quiet
tar -xJf "$WORK/source.tar.xz" -C "$WORK"
cd "$WORK/Python-3.13.5"
skip=()
for module in _tkinter _curses _curses_panel readline _dbm _gdbm xxlimited xxlimited_35 _ctypes_test; do
    skip+=("py_cv_module_$module=n/a")
done
./configure --quiet --prefix="$PREFIX" --disable-test-modules OPT="-O1 -fwrapv -DNDEBUG" \
    "${skip[@]}" >configure.out 2>&1 || { tail -40 config.log; exit 1; }
make -s -j2 >make.out 2>&1 || { tail -40 make.out; exit 1; }
make -s altinstall >install.out 2>&1 || { tail -40 install.out; exit 1; }
"$PREFIX/bin/python3.13" -c 'import ssl, sqlite3, zlib, bz2, lzma, ctypes, decimal'
touch "$PREFIX/.built"
