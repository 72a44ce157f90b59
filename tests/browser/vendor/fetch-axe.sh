#!/usr/bin/env bash
# Fetch axe-core (pinned) from the npm registry into tests/browser/vendor/, the version in the file
# name. For the browser tests only: it is never served to users. Rerunnable: it replaces its files.
# To update: change AXE below, run this script, update README.md here and AXE_FILE in
# tests/browser/helpers.py, run the browser tests.
set -euo pipefail

AXE=4.14.1

dest="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "axe-core@$AXE" >/dev/null && tar xzf ./*.tgz)
rm -f "$dest"/axe-core-*.min.js "$dest"/axe-core-*.LICENSE
cp "$work/package/axe.min.js" "$dest/axe-core-$AXE.min.js"
cp "$work/package/LICENSE" "$dest/axe-core-$AXE.LICENSE"
echo "Vendored axe-core $AXE into $dest"
