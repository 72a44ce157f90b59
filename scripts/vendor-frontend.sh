#!/usr/bin/env bash
# Fetch the pinned front-end builds from the npm registry and copy them, version in the file name,
# into cephalopod/static/vendor/. Rerunnable: it replaces the files it writes. Needs only `npm`.
# To update a library: change its version below, run this script, update VENDORED.md, run the tests.
set -euo pipefail

CHARTJS=4.6.1
JSVECTORMAP=1.7.0
PICO=2.1.1

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/cephalopod/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() {  # fetch NAME@VERSION → unpacked in $work/<dir>/package
  local spec=$1 dir=$2
  mkdir -p "$work/$dir"
  (cd "$work/$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
}

fetch "chart.js@$CHARTJS" chartjs
fetch "jsvectormap@$JSVECTORMAP" jsvectormap
fetch "@picocss/pico@$PICO" pico

mkdir -p "$dest"
# the source-map comment is dropped: the map is not vendored, and a browser would ask for it
sed '/^\/\/# sourceMappingURL=/d; s#//\# sourceMappingURL=[^ ]*##' \
  "$work/chartjs/package/dist/chart.umd.min.js" > "$dest/chart-$CHARTJS.umd.min.js"
cp "$work/chartjs/package/LICENSE.md" "$dest/chart-$CHARTJS.LICENSE.md"
cp "$work/jsvectormap/package/dist/jsvectormap.min.js" "$dest/jsvectormap-$JSVECTORMAP.min.js"
cp "$work/jsvectormap/package/dist/jsvectormap.min.css" "$dest/jsvectormap-$JSVECTORMAP.min.css"
cp "$work/jsvectormap/package/dist/maps/world.js" "$dest/jsvectormap-$JSVECTORMAP.world.js"
cp "$work/jsvectormap/package/LICENSE" "$dest/jsvectormap-$JSVECTORMAP.LICENSE"
cp "$work/pico/package/css/pico.min.css" "$dest/pico-$PICO.min.css"
cp "$work/pico/package/LICENSE.md" "$dest/pico-$PICO.LICENSE.md"
echo "Vendored into $dest:"
ls -1 "$dest"
