#!/usr/bin/env bash
# Starts the local PostgreSQL and RabbitMQ this machine has, if they are not
# running, and waits until both accept connections. Used by .ci/run and by
# developers; production runs its own services.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port seconds
  for _ in $(seq "$3"); do
    if port_open "$2"; then return 0; fi
    sleep 1
  done
  echo "$1 did not come up on 127.0.0.1:$2" >&2
  return 1
}

if ! port_open 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
wait_for PostgreSQL 5432 60
for _ in $(seq 60); do
  if pg_isready -h 127.0.0.1 -p 5432 -q; then break; fi
  sleep 1
done

if ! port_open 5672; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  wait_for RabbitMQ 5672 120
  rabbitmqctl await_startup >/dev/null
fi
wait_for RabbitMQ 5672 120

# The broker settings the hub relies on (deploy/rabbitmq/rabbitmq.conf), set
# on the running node for the connections opened from now on. A production
# node reads them from its rabbitmq.conf.
rabbitmqctl eval '
  application:set_env(rabbit, frame_max, 8192),
  application:set_env(rabbit, max_message_size, 1048576).' >/dev/null

# Test runs that were killed leave their per-test namespaces behind (queues
# named t<12 hex digits>.*). Quorum queues hold file handles in the broker,
# and enough of them stop it from accepting connections: remove them first.
rabbitmqctl eval '
  Qs = [Q || Q <- rabbit_amqqueue:list(),
             re:run(element(4, amqqueue:get_name(Q)), <<"^t[0-9a-f]{12}\\.">>) =/= nomatch],
  [catch rabbit_amqqueue:delete(Q, false, false, <<"test cleanup">>) || Q <- Qs],
  length(Qs).' >/dev/null

# Their databases too (gridhub_test_*, gridhub_bench_*).
for database in $(psql -h 127.0.0.1 -U postgres -At -c \
    "SELECT datname FROM pg_database WHERE datname LIKE 'gridhub\_test\_%' OR datname LIKE 'gridhub\_bench\_%'"); do
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)"
done

# TLS on both links, for the TLS tests: certificates from a test CA
# (deploy/dev/tls.sh); PostgreSQL takes TLS beside plaintext; RabbitMQ
# listens for TLS on 5671 (any client) and 5674 (only a client with a
# certificate of the CA). A production node reads the same from its
# rabbitmq.conf (docs/OPERATIONS.md, TLS).
tls=/var/lib/gridhub-dev-tls
bash "$(dirname "$0")/tls.sh" "$tls"
psql -h 127.0.0.1 -U postgres -qAt \
  -c "ALTER SYSTEM SET ssl_cert_file = '$tls/server.pem'" \
  -c "ALTER SYSTEM SET ssl_key_file = '$tls/server-postgres.key'" \
  -c "ALTER SYSTEM SET ssl = on" \
  -c "SELECT pg_reload_conf()" >/dev/null
tls_listener() { # port verify-options
  # Started again each time, so that it serves the certificates there now.
  rabbitmqctl eval "
    catch rabbit_networking:stop_tcp_listener($1),
    rabbit_networking:start_ssl_listener($1, [
      {cacertfile, \"$tls/ca.pem\"}, {certfile, \"$tls/server.pem\"},
      {keyfile, \"$tls/server-rabbitmq.key\"} | $2], 1)." >/dev/null
}
tls_listener 5671 '[{verify, verify_none}]'
tls_listener 5674 '[{verify, verify_peer}, {fail_if_no_peer_cert, true}]'
wait_for "RabbitMQ (TLS)" 5671 30
wait_for "RabbitMQ (TLS, client certificates)" 5674 30
