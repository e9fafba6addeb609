#!/usr/bin/env bash
# Installs gridhub's Debian package on this machine and runs it: the file
# list, the gridhub user and the secrets' permissions, the unit checked by
# systemd-analyze, then `gridhub serve --config /etc/gridhub/gridhub.toml`
# run from / as the gridhub user (no systemd here) against this machine's
# RabbitMQ and PostgreSQL, on a virtual host and a database of its own; a
# sample ticket published with `gridhub publish` becomes a case, seen
# through the API. Then the hub stops and the package is purged, the
# virtual host and the database dropped, whatever the outcome.
#
# Needs root. Usage: tests/package.sh [DEB]  (default: the package
# deploy/package.sh built). Refuses to run where gridhub is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

target=${CARGO_TARGET_DIR:-target}
deb=$(realpath "${1:-$(ls "$target"/debian/gridhub_*.deb)}")
vhost=gridhub-package-test
database=gridhub_package_test
sample=/usr/share/gridhub/connectors/hotline-12345/samples/ticket/valid/construction-noise-yuqiao-night.json
hub=

fail() { echo "package test: $*" >&2; exit 1; }

if dpkg-query -W -f='${Status}' gridhub 2>/dev/null | grep -q installed; then
  fail "gridhub is installed on this machine already; not touching it"
fi

cleanup() {
  if [ -n "$hub" ] && kill -0 "$hub" 2>/dev/null; then
    kill -TERM "$hub" 2>/dev/null || true
    wait "$hub" 2>/dev/null || true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y -qq gridhub >/dev/null 2>&1 || true
  rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qAt -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null

echo "== files"
for path in /usr/bin/gridhub /etc/gridhub/gridhub.toml /etc/gridhub/gridhub.env \
    /etc/gridhub/data-keys /usr/share/gridhub/connectors/hotline-12345/connector.toml \
    /usr/share/gridhub/schemas /usr/share/gridhub/deploy/routing.toml \
    /usr/share/gridhub/deploy/calendar.toml /usr/share/gridhub/deploy/assessment.toml \
    /usr/share/gridhub/deploy/open311.toml /usr/share/doc/gridhub/DEPLOY.md "$sample"; do
  [ -e "$path" ] || fail "$path: missing"
done
unit=$(dpkg -L gridhub | grep '/systemd/system/gridhub.service$') || fail "no systemd unit"
dpkg-query -W -f='${Conffiles}\n' gridhub | grep -q '/etc/gridhub/gridhub.toml' \
  || fail "gridhub.toml is not a conffile"
getent passwd gridhub >/dev/null || fail "no gridhub user"
for secret in /etc/gridhub/gridhub.env /etc/gridhub/data-keys; do
  mode=$(stat -c '%U:%G %a' "$secret")
  [ "$mode" = "root:gridhub 640" ] || fail "$secret: $mode, not root:gridhub 640"
  runuser -u gridhub -- test -r "$secret" || fail "$secret: the gridhub user cannot read it"
  ! runuser -u nobody -- test -r "$secret" || fail "$secret: readable by others"
done
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
# The production build: no tools in it.
if /usr/bin/gridhub demo --help >/dev/null 2>&1; then fail "the package carries the tools"; fi
/usr/bin/gridhub --version
echo "$(dpkg -L gridhub | wc -l) paths; unit $unit"

echo "== configure: a virtual host and a database of the test's own"
rabbitmqctl -q add_vhost "$vhost" >/dev/null
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat >> /etc/gridhub/gridhub.env <<ENV
GRIDHUB_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$vhost
GRIDHUB_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$database
GRIDHUB_HTTP_LISTEN=127.0.0.1:$port
GRIDHUB_OPS_TOKEN=$token
ENV

echo "== serve, from /, as the gridhub user"
(
  cd /
  set -a
  # shellcheck disable=SC1091
  . /etc/gridhub/gridhub.env
  set +a
  exec runuser -u gridhub -- /usr/bin/gridhub serve --config /etc/gridhub/gridhub.toml
) > /tmp/gridhub-package-test.log 2>&1 &
hub=$!
api() { curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port$1"; }
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$hub" 2>/dev/null || { cat /tmp/gridhub-package-test.log >&2; fail "the hub stopped"; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat /tmp/gridhub-package-test.log >&2; fail "not ready"; }
grep -q "no data keys" /tmp/gridhub-package-test.log && fail "the hub runs without its data keys"
echo "ready on 127.0.0.1:$port"

echo "== publish a sample ticket"
(
  cd /
  set -a
  # shellcheck disable=SC1091
  . /etc/gridhub/gridhub.env
  set +a
  /usr/bin/gridhub publish --config /etc/gridhub/gridhub.toml \
    --connector hotline-12345 --type ticket "$sample"
)
case=
for _ in $(seq 1 60); do
  case=$(api '/api/cases?limit=10' | python3 -c 'import json, sys
cases = json.load(sys.stdin)
print(cases[0]["case_no"] + " " + cases[0]["status"] if cases else "")')
  [ -n "$case" ] && break
  sleep 0.5
done
[ -n "$case" ] || { cat /tmp/gridhub-package-test.log >&2; fail "no case"; }
echo "case $case"

echo "== stop"
# SIGTERM to the hub itself (runuser's child): runuser, told to stop, would
# kill it and report 143 whatever the hub did.
served=$(pgrep -P "$hub" -u gridhub -x gridhub) || fail "no hub process under runuser"
kill -TERM "$served"
status=0
wait "$hub" || status=$?
hub=
[ "$status" = 0 ] || { cat /tmp/gridhub-package-test.log >&2; fail "serve exited $status"; }
if pgrep -u gridhub >/dev/null; then fail "a gridhub process is left"; fi
rm -f /tmp/gridhub-package-test.log

echo "== purge"
DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y -qq gridhub >/dev/null
for path in /usr/bin/gridhub /etc/gridhub /usr/share/gridhub; do
  [ ! -e "$path" ] || fail "$path: left after purge"
done
if getent passwd gridhub >/dev/null; then fail "the gridhub user is left after purge"; fi
echo "package test passed in $(( $(date +%s) - started )) s"
