#!/usr/bin/env bash
# Builds gridhub's Debian package with cargo-deb: a release build of the
# production service (no tools), the settings in /etc/gridhub, the
# connectors, schemas and rules in /usr/share/gridhub, the systemd unit
# (deploy/debian/gridhub.service). Installs cargo-deb if it is missing.
# Prints the package's path, then its file list. About 12 minutes on a
# cold build on 2 shared cores; seconds when the release build is warm.
#
# Usage: deploy/package.sh   (CARGO_TARGET_DIR is honoured)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb"
  cargo install cargo-deb --locked
fi

target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/debian"
# Only this build's package stays, so that the path below is unambiguous.
rm -f "$target"/debian/gridhub_*.deb
cargo deb --strip --no-separate-debug-symbols --output "$target/debian" -- --locked >&2
deb=$(ls "$target"/debian/gridhub_*.deb)
echo "$deb"
dpkg -c "$deb"
