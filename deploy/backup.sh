#!/usr/bin/env bash
# Backs up a gridhub district: the case store (pg_dump, custom format) and
# the broker's definitions of the hub's virtual host (exchanges, queues,
# bindings, policies, permissions and the users that hold them), into a new
# directory named after the time, with a manifest.
#
#   deploy/backup.sh [--database URL] [--vhost NAME] [--namespace NS] [--out DIR]
#
#   --database URL   the case store (default $GRIDHUB_DATABASE_URL, else
#                    postgres://postgres@127.0.0.1:5432/gridhub)
#   --vhost NAME     the hub's virtual host (default $GRIDHUB_VHOST, else /)
#   --namespace NS   keep only the exchanges, queues and bindings named
#                    NS.* (default $GRIDHUB_NAMESPACE, else all of the vhost)
#   --out DIR        where the backup directory is made (default
#                    $GRIDHUB_BACKUP_DIR, else ./backups)
#
# Writes DIR/gridhub-<UTC time>/ with database.dump, definitions.json and
# manifest.json (what, when, sizes, SHA-256s, the schema version, the rows
# of each table in the dump, the broker objects), readable by its owner
# only: the dump holds sealed personal data, the definitions the users'
# password hashes. The last line printed is the directory.
#
# pg_dump reads one consistent snapshot while the hub runs. The broker's
# definitions are its topology, not its messages: what waits in a queue at
# the time is not in the backup (docs/OPERATIONS.md, Backup and restore).
#
# Needs pg_dump, pg_restore and psql of the server's major version or newer,
# rabbitmqctl where it reaches the broker (RABBITMQCTL overrides the
# command, e.g. "rabbitmqctl -n rabbit@mq1"), jq and sha256sum.
set -euo pipefail

database=${GRIDHUB_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/gridhub}
vhost=${GRIDHUB_VHOST:-/}
namespace=${GRIDHUB_NAMESPACE:-}
out=${GRIDHUB_BACKUP_DIR:-./backups}
read -r -a rabbitmqctl <<<"${RABBITMQCTL:-rabbitmqctl}"

usage() {
    sed -n '/^#   deploy/,/^#   --out/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    echo "backup: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --database) database=${2:?--database needs a URL}; shift 2 ;;
    --vhost) vhost=${2:?--vhost needs a name}; shift 2 ;;
    --namespace) namespace=${2?--namespace needs a prefix}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "backup: unknown argument $1" >&2; usage ;;
    esac
done

for tool in pg_dump pg_restore psql jq sha256sum "${rabbitmqctl[0]}"; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

umask 077
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
dir="$out/gridhub-$stamp"
n=1
while ! mkdir "$dir" 2>/dev/null; do
    n=$((n + 1))
    dir="$out/gridhub-$stamp-$n"
done
# A backup that failed half-way is removed, not left to be mistaken for one.
done_ok=
trap '[ -n "$done_ok" ] || rm -rf "$dir"' EXIT

# The case store: one consistent snapshot.
dbname=$(psql -X -q -At -v ON_ERROR_STOP=1 -c 'SELECT current_database()' "$database") ||
    die "cannot reach the database"
pg_dump --format=custom --file="$dir/database.dump" --dbname="$database" ||
    die "pg_dump failed"

# What the dump holds, read back from the dump itself (which also shows it
# reads): the rows of each table, and the newest migration applied.
rows_in_dump() {
    pg_restore --data-only --table="$1" --file=- "$dir/database.dump" |
        awk '/^COPY /{c=1; next} /^\\\.$/{c=0} c{n++} END{print n+0}'
}
tables=$(pg_restore --list "$dir/database.dump" | awk '$4 == "TABLE" && $5 == "DATA" {print $7}' | sort -u)
rows='{}'
for table in $tables; do
    rows=$(jq -c --arg t "$table" --argjson n "$(rows_in_dump "$table")" '. + {($t): $n}' <<<"$rows")
done
schema_version=$(pg_restore --data-only --table=_sqlx_migrations --file=- "$dir/database.dump" |
    awk -F'\t' '/^COPY /{c=1; next} /^\\\.$/{c=0} c && $4 == "t" && $1 > v {v = $1} END{print v+0}')

# The broker: the vhost's definitions (and the namespace's, if given).
"${rabbitmqctl[@]}" -q export_definitions - >"$dir/all-definitions.json" ||
    die "rabbitmqctl export_definitions failed"
jq --arg vhost "$vhost" --arg ns "$namespace" '
    def named: $ns == "" or startswith($ns + ".");
    . as $all
    | [($all.permissions // [])[], ($all.topic_permissions // [])[]
       | select(.vhost == $vhost) | .user] | unique as $holders
    | {
        rabbit_version: $all.rabbit_version,
        rabbitmq_version: $all.rabbitmq_version,
        vhosts: [($all.vhosts // [])[] | select(.name == $vhost)],
        users: [($all.users // [])[] | select(.name as $u | $holders | index($u))],
        permissions: [($all.permissions // [])[] | select(.vhost == $vhost)],
        topic_permissions: [($all.topic_permissions // [])[] | select(.vhost == $vhost)],
        policies: [($all.policies // [])[] | select(.vhost == $vhost)],
        parameters: [($all.parameters // [])[] | select(.vhost == $vhost)],
        exchanges: [($all.exchanges // [])[] | select(.vhost == $vhost and (.name | named))],
        queues: [($all.queues // [])[] | select(.vhost == $vhost and (.name | named))],
        bindings: [($all.bindings // [])[] | select(.vhost == $vhost and (.source | named))]
      }' "$dir/all-definitions.json" >"$dir/definitions.json"
rm -f "$dir/all-definitions.json"
[ "$(jq '.vhosts | length' "$dir/definitions.json")" = 1 ] ||
    die "the broker has no virtual host $vhost"

size() { stat -c %s "$1"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
jq -n \
    --arg created_at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg host "$(uname -n)" \
    --arg dbname "$dbname" \
    --argjson schema_version "$schema_version" \
    --arg pg_dump "$(pg_dump --version | awk '{print $3}')" \
    --argjson db_bytes "$(size "$dir/database.dump")" \
    --arg db_sha256 "$(sum "$dir/database.dump")" \
    --argjson rows "$rows" \
    --arg vhost "$vhost" \
    --arg namespace "$namespace" \
    --argjson defs_bytes "$(size "$dir/definitions.json")" \
    --arg defs_sha256 "$(sum "$dir/definitions.json")" \
    --slurpfile defs "$dir/definitions.json" \
    '{
        format: 1,
        created_at: $created_at,
        host: $host,
        database: {
            name: $dbname,
            file: "database.dump",
            bytes: $db_bytes,
            sha256: $db_sha256,
            pg_dump: $pg_dump,
            schema_version: $schema_version,
            rows: $rows
        },
        broker: {
            vhost: $vhost,
            namespace: $namespace,
            file: "definitions.json",
            bytes: $defs_bytes,
            sha256: $defs_sha256,
            rabbitmq_version: $defs[0].rabbitmq_version,
            exchanges: ($defs[0].exchanges | length),
            queues: ($defs[0].queues | length),
            bindings: ($defs[0].bindings | length),
            users: ($defs[0].users | length)
        }
    }' >"$dir/manifest.json"
done_ok=1

jq -r '"database \(.database.name): schema version \(.database.schema_version), \(.database.bytes) bytes, " +
       ([.database.rows | to_entries[] | select(.key == "cases" or .key == "case_events" or .key == "dead_letters")
         | "\(.key) \(.value)"] | join(", ")),
       "broker vhost \(.broker.vhost): \(.broker.exchanges) exchanges, \(.broker.queues) queues, \(.broker.bindings) bindings, \(.broker.users) users"' \
    "$dir/manifest.json"
echo "$dir"
