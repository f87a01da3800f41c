#!/usr/bin/env bash
# Install the working tree into a private library without building in src/,
# so that several people (or helpers) can build at once from one checkout.
# Usage: tools/dev-install.sh LIBDIR      then: R_LIBS=LIBDIR Rscript ...
set -euo pipefail
lib=${1:?usage: tools/dev-install.sh LIBDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$lib"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/lmmfit"
(cd "$top" && tar --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='lmmfit.Rcheck' -cf - .) | tar -xf - -C "$tmp/lmmfit"
R CMD INSTALL --no-test-load --library="$lib" "$tmp/lmmfit" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
grep -iE 'warning|error' "$tmp/install.log" || true
