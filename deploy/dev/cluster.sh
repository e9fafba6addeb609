#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, for the cluster test and for
# trying fail-over by hand: nodes gridhub-a, gridhub-b and gridhub-c
# (@localhost), AMQP on 127.0.0.1:5681, 5682 and 5683, from the installed
# rabbitmq-server. It never touches the machine's own node (rabbit@localhost,
# 5672): each node has its own name, ports, configuration, data and logs
# under one folder.
#
#   deploy/dev/cluster.sh start    # starts what is not running, joins b and c to a, waits
#   deploy/dev/cluster.sh status   # each node: running or not, and the cluster's members
#   deploy/dev/cluster.sh stop     # stops the three nodes and removes the folder
#
# GRIDHUB_CLUSTER_DIR sets the folder (default /tmp/gridhub-cluster). Run as
# root or as the rabbitmq user: the Debian wrappers run the nodes as the
# rabbitmq user, with its Erlang cookie (/var/lib/rabbitmq/.erlang.cookie),
# so rabbitmqctl reaches them the same way it reaches the machine's node.
set -euo pipefail

DIR=${GRIDHUB_CLUSTER_DIR:-/tmp/gridhub-cluster}
NODES=(a b c)
declare -A PORT=([a]=5681 [b]=5682 [c]=5683)
FIRST=gridhub-a@localhost

node_name() { echo "gridhub-$1@localhost"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# rabbitmqctl for one of our nodes, never the default one.
ctl() { # node-letter args...
  local node=$1
  shift
  rabbitmqctl -q -n "$(node_name "$node")" "$@"
}

running() { # node-letter: the node answers and its application runs
  ctl "$1" status >/dev/null 2>&1 && port_open "${PORT[$1]}"
}

# The node's own environment: name, ports, files. RABBITMQ_CONF_ENV_FILE
# points at our own file, so the machine's rabbitmq-env.conf (which names
# the default node) is not read.
node_env() { # node-letter
  local n=$1 home="$DIR/$1"
  echo "RABBITMQ_NODENAME=$(node_name "$n")"
  echo "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"
  echo "RABBITMQ_NODE_PORT=${PORT[$n]}"
  echo "RABBITMQ_DIST_PORT=$((PORT[$n] + 20000))"
  echo "RABBITMQ_CONF_ENV_FILE=$home/rabbitmq-env.conf"
  echo "RABBITMQ_CONFIG_FILE=$home/rabbitmq.conf"
  echo "RABBITMQ_ADVANCED_CONFIG_FILE=$home/advanced.config"
  echo "RABBITMQ_ENABLED_PLUGINS_FILE=$home/enabled_plugins"
  echo "RABBITMQ_MNESIA_BASE=$home/mnesia"
  echo "RABBITMQ_LOG_BASE=$home/log"
  echo "RABBITMQ_PID_FILE=$home/pid"
}

prepare() { # node-letter
  local n=$1 home="$DIR/$1"
  mkdir -p "$home/mnesia" "$home/log"
  # The broker settings the hub relies on (deploy/rabbitmq/rabbitmq.conf),
  # and this node's listener only.
  cat >"$home/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:${PORT[$n]}
frame_max = 8192
max_message_size = 1048576
EOF
  echo '[].' >"$home/advanced.config"
  echo '[].' >"$home/enabled_plugins"
  cat >"$home/rabbitmq-env.conf" <<'EOF'
ERL_EPMD_ADDRESS=127.0.0.1
export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  if id rabbitmq >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    chown -R rabbitmq:rabbitmq "$DIR"
  fi
}

start_node() { # node-letter
  local n=$1
  if running "$n"; then
    echo "$(node_name "$n") is running (127.0.0.1:${PORT[$n]})"
    return 0
  fi
  if port_open "${PORT[$n]}"; then
    echo "port ${PORT[$n]} is taken by something else than $(node_name "$n")" >&2
    return 1
  fi
  prepare "$n"
  echo "starting $(node_name "$n") on 127.0.0.1:${PORT[$n]} (data in $DIR/$n)"
  (
    # shellcheck disable=SC2046
    export $(node_env "$n")
    rabbitmq-server -detached >/dev/null 2>&1
  )
}

await_node() { # node-letter
  local n=$1
  if ! timeout 120 rabbitmqctl -q -n "$(node_name "$n")" await_startup --timeout 110 >/dev/null 2>&1; then
    echo "$(node_name "$n") did not start: see $DIR/$n/log" >&2
    return 1
  fi
}

members() { # node-letter: running nodes of the cluster, as the node sees them
  ctl "$1" eval 'lists:sort(rabbit_nodes:all_running()).' 2>/dev/null | tr -d '[] \n'
}

joined() { # node-letter: whether it is in a's cluster
  ctl a eval 'lists:sort(rabbit_nodes:all()).' 2>/dev/null | grep -q "$(node_name "$1")"
}

wanted_members() {
  local n list=""
  for n in "${NODES[@]}"; do list="$list,'$(node_name "$n")'"; done
  echo "${list#,}"
}

start() {
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do await_node "$n"; done
  for n in b c; do
    if joined "$n"; then continue; fi
    echo "joining $(node_name "$n") to $FIRST"
    # The node logs harmless warnings while it changes clusters: kept in
    # its folder, shown only on failure.
    if ! { ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$FIRST" &&
      ctl "$n" start_app; } >"$DIR/join-$n.log" 2>&1; then
      cat "$DIR/join-$n.log" >&2
      echo "$(node_name "$n") could not join $FIRST" >&2
      return 1
    fi
    await_node "$n"
  done
  local want
  want=$(wanted_members)
  for _ in $(seq 60); do
    if [ "$(members a)" = "$want" ]; then
      echo "cluster running: $want; AMQP on 127.0.0.1:5681, 5682, 5683 (guest/guest)"
      return 0
    fi
    sleep 1
  done
  echo "the cluster did not form: running $(members a), wanted $want" >&2
  return 1
}

stop() {
  for n in "${NODES[@]}"; do
    if ctl "$n" status >/dev/null 2>&1; then
      echo "stopping $(node_name "$n")"
      ctl "$n" shutdown >/dev/null 2>&1 || ctl "$n" stop >/dev/null 2>&1 || true
    fi
  done
  # A node that did not stop on request: only our nodes' pids, from their files.
  for n in "${NODES[@]}"; do
    if [ -s "$DIR/$n/pid" ]; then
      pid=$(cat "$DIR/$n/pid")
      if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$(node_name "$n")"; then
        kill "$pid" 2>/dev/null || true
      fi
    fi
  done
  rm -rf "$DIR"
  echo "cluster stopped; $DIR removed"
}

status() {
  local n any=1
  for n in "${NODES[@]}"; do
    if running "$n"; then
      echo "$(node_name "$n"): running on 127.0.0.1:${PORT[$n]}"
      any=0
    elif ctl "$n" status >/dev/null 2>&1; then
      echo "$(node_name "$n"): node up, application stopped"
      any=0
    else
      echo "$(node_name "$n"): not running"
    fi
  done
  if [ $any = 0 ]; then
    for n in "${NODES[@]}"; do
      if running "$n"; then
        echo "cluster members running (as $(node_name "$n") sees it): $(members "$n")"
        break
      fi
    done
  fi
  [ "$(members a 2>/dev/null || true)" = "$(wanted_members)" ]
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
