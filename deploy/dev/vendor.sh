#!/usr/bin/env bash
# The console's chart library, vendored into the binary: fetches the pinned
# Chart.js package from the npm registry, checks the tarball against the
# sha512 pinned here and against the registry's dist.integrity, and writes
# its minified UMD build and licence to src/http/vendor/.
#
# Usage: deploy/dev/vendor.sh           re-vendor (overwrite the files, and
#                                       the version the console asks for)
#        deploy/dev/vendor.sh --check   only compare with the committed files
#
# To update: set VERSION, run with INTEGRITY="" once to see the registry's
# value, check the release notes, pin the new value, run again, rebuild.
set -euo pipefail
VERSION=4.6.2
INTEGRITY=${INTEGRITY-sha512-xachB+pPHjp0syJi7llUBA1w3kMYl6NF3o7eVrvjnWCT+IB2zMaF2pX5UYDiwbbfsioFEIRnAjreNOMsGj5TIA==}
# From the tarball to src/http/vendor/.
FILES=("dist/chart.umd.min.js:chart.umd.min.js" "LICENSE.md:chart.js-LICENSE.md")

root=$(cd "$(dirname "$0")/../.." && pwd)
vendor="$root/src/http/vendor"
check=false
[[ ${1:-} == --check ]] && check=true

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

registry=$(npm view "chart.js@$VERSION" dist.integrity)
tarball=$(npm pack --silent "chart.js@$VERSION")
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ $actual != "$registry" ]]; then
  echo "chart.js@$VERSION: tarball $actual does not match the registry's dist.integrity $registry" >&2
  exit 1
fi
if [[ -z $INTEGRITY ]]; then
  echo "chart.js@$VERSION: the registry's dist.integrity is $registry; pin it as INTEGRITY" >&2
  exit 1
fi
if [[ $actual != "$INTEGRITY" ]]; then
  echo "chart.js@$VERSION: tarball $actual does not match the pinned $INTEGRITY" >&2
  exit 1
fi
tar xzf "$tarball"

status=0
mkdir -p "$vendor"
for pair in "${FILES[@]}"; do
  from="package/${pair%%:*}" to="$vendor/${pair##*:}"
  if $check; then
    if cmp -s "$from" "$to"; then
      echo "ok  ${to#"$root"/} is chart.js@$VERSION ${pair%%:*}"
    else
      echo "DIFFERS  ${to#"$root"/} is not chart.js@$VERSION ${pair%%:*}" >&2
      status=1
    fi
  else
    cp "$from" "$to"
    echo "wrote ${to#"$root"/} ($(wc -c < "$to") bytes) from chart.js@$VERSION"
  fi
done
# The console asks for the file with its version, which browsers cache by.
console="$root/src/http/console.html"
reference="/vendor/chart.umd.min.js?v=$VERSION"
if $check; then
  if grep -qF "$reference" "$console"; then
    echo "ok  src/http/console.html loads $reference"
  else
    echo "DIFFERS  src/http/console.html does not load $reference" >&2
    status=1
  fi
else
  sed -i -E "s#/vendor/chart\.umd\.min\.js\?v=[0-9A-Za-z.+-]+#$reference#" "$console"
  echo "src/http/console.html loads $reference"
fi
exit $status
