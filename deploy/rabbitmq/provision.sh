#!/usr/bin/env bash
# Provisions RabbitMQ for gridhub: the exchanges and queues, a user per
# connector (least privilege: publish to <ns>.in under its own routing
# keys, read its own <ns>.out.<connector>, configure nothing), the command
# centre's user (reads its feed) and the hub's own user (the user of
# amqp_url in the config; RabbitMQ's guest is never written).
#
# Passwords are kept in a file readable by its owner only, one
# `user password` line each: users without one get a new one, and the
# broker gets their hashes. Hand each department its own line.
#
# Usage: deploy/rabbitmq/provision.sh CONFIG [PASSWORDS]
#   CONFIG     the hub's settings file (namespace, amqp_url, connectors_dir)
#   PASSWORDS  default /etc/gridhub/broker-passwords
# Environment: GRIDHUB (the gridhub binary, default `gridhub` on PATH),
# RABBITMQCTL (default `rabbitmqctl`; run it where it reaches the broker).
#
# Run it again after adding a connector: existing passwords are kept.
# Revoke a user: `rabbitmqctl delete_user NAME` (and remove its line);
# rotate one: remove its line and run this again.
set -euo pipefail

config=${1:?usage: provision.sh CONFIG [PASSWORDS]}
passwords=${2:-/etc/gridhub/broker-passwords}
gridhub=${GRIDHUB:-gridhub}
rabbitmqctl=${RABBITMQCTL:-rabbitmqctl}

definitions=$(mktemp --suffix=.json)
trap 'rm -f "$definitions"' EXIT
umask 077
"$gridhub" topology --config "$config" --passwords "$passwords" > "$definitions"
"$rabbitmqctl" -q import_definitions "$definitions"
echo "provisioned; passwords in $passwords (owner-only)"
