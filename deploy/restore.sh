#!/usr/bin/env bash
# Restores a backup made by deploy/backup.sh into a NEW database and a NEW
# virtual host, and checks them against the backup's manifest.
#
#   deploy/restore.sh --from DIR --database URL --vhost NAME [--force]
#                     [--no-database | --no-broker]
#
#   --from DIR       a directory deploy/backup.sh made
#   --database URL   the database to create and restore into (its name is
#                    the URL's last path segment); it must not exist
#   --vhost NAME     the virtual host to create and restore into; it must
#                    not exist
#   --force          drop the database and delete the virtual host first if
#                    they exist: the way to restore over live ones (stop the
#                    hubs first)
#   --no-database, --no-broker   restore only the other half
#
# The database is created on the URL's server (connecting to its `postgres`
# database to do so; GRIDHUB_ADMIN_DATABASE names another) and restored
# with pg_restore --no-owner: the URL's user owns what it restores. Then
# its schema version and the rows of every table are compared with the
# manifest. The definitions are imported with every object moved to the new
# virtual host; a user the backup holds that the broker lacks is created
# with its backed-up password hash, one the broker has is left as it is.
# Messages are not in a backup: the restored queues start empty.
#
# Needs pg_restore and psql, rabbitmqctl where it reaches the broker
# (RABBITMQCTL overrides the command), jq and sha256sum. Exit 1, saying
# why, on any mismatch.
set -euo pipefail

from=
database=
vhost=
force=
restore_database=1
restore_broker=1
read -r -a rabbitmqctl <<<"${RABBITMQCTL:-rabbitmqctl}"

usage() {
    sed -n '/^#   deploy/,/^#   --no-database/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    echo "restore: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    --database) database=${2:?--database needs a URL}; shift 2 ;;
    --vhost) vhost=${2:?--vhost needs a name}; shift 2 ;;
    --force) force=1; shift ;;
    --no-database) restore_database=; shift ;;
    --no-broker) restore_broker=; shift ;;
    -h | --help) usage ;;
    *) echo "restore: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$from" ] || usage
[ -z "$restore_database" ] || [ -n "$database" ] || usage
[ -z "$restore_broker" ] || [ -n "$vhost" ] || usage

for tool in jq sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
manifest="$from/manifest.json"
[ -f "$manifest" ] || die "$manifest: no such file (is $from a backup?)"
[ "$(jq .format "$manifest")" = 1 ] || die "$manifest: unknown format"

# Every file as it was written.
check_file() {
    local file
    file="$from/$(jq -r ".$1.file" "$manifest")"
    [ -f "$file" ] || die "$file: missing"
    [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$(jq -r ".$1.sha256" "$manifest")" ] ||
        die "$file: its SHA-256 differs from the manifest's: the backup is damaged"
    echo "$file"
}

echo "backup of $(jq -r .created_at "$manifest") from $(jq -r .host "$manifest")"

if [ -n "$restore_database" ]; then
    for tool in pg_restore psql; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
    dump=$(check_file database)
    # postgres://user@host:port/NAME?options: NAME, and the same URL on the
    # server's maintenance database.
    base=${database%%\?*}
    query=${database#"$base"}
    name=${base##*/}
    if [ -z "$name" ] || [ "$name" = "$base" ]; then
        die "--database: no database name in the URL"
    fi
    admin="${base%/*}/${GRIDHUB_ADMIN_DATABASE:-postgres}$query"
    sql() { psql -X -q -At -v ON_ERROR_STOP=1 -v db="$name" "$admin"; }
    exists=$(sql <<<"SELECT count(*) FROM pg_database WHERE datname = :'db'") ||
        die "cannot reach the database server"
    if [ "$exists" != 0 ]; then
        [ -n "$force" ] ||
            die "database $name exists: restore into a new database (another name), or --force to drop it and restore over it"
        sql <<<'DROP DATABASE :"db" WITH (FORCE)' >/dev/null
        echo "dropped database $name (--force)"
    fi
    sql <<<'CREATE DATABASE :"db"' >/dev/null
    echo "created database $name"
    pg_restore --no-owner --no-privileges --exit-on-error --dbname="$database" "$dump" ||
        die "pg_restore failed; database $name is incomplete: drop it"
    # The same rows and schema as the dump.
    version=$(psql -X -q -At -v ON_ERROR_STOP=1 "$database" \
        -c 'SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success')
    [ "$version" = "$(jq .database.schema_version "$manifest")" ] ||
        die "schema version $version, the backup says $(jq .database.schema_version "$manifest")"
    mismatches=0
    for table in $(jq -r '.database.rows | keys[]' "$manifest"); do
        expected=$(jq --arg t "$table" '.database.rows[$t]' "$manifest")
        actual=$(psql -X -q -At -v ON_ERROR_STOP=1 -v t="$table" "$database" \
            <<<'SELECT count(*) FROM :"t"')
        if [ "$actual" != "$expected" ]; then
            echo "restore: table $table has $actual rows, the backup $expected" >&2
            mismatches=$((mismatches + 1))
        fi
    done
    [ "$mismatches" = 0 ] || die "$mismatches tables differ from the backup"
    echo "restored database $name: schema version $version, $(jq '.database.rows | length' "$manifest") tables," \
        "$(jq -r '[.database.rows | to_entries[] | select(.key == "cases" or .key == "case_events" or .key == "dead_letters") | "\(.key) \(.value)"] | join(", ")' "$manifest")"
fi

if [ -n "$restore_broker" ]; then
    command -v "${rabbitmqctl[0]}" >/dev/null || die "${rabbitmqctl[0]} not found"
    definitions=$(check_file broker)
    present=$("${rabbitmqctl[@]}" -q list_vhosts --formatter json | jq --arg v "$vhost" '[.[] | select(.name == $v)] | length')
    if [ "$present" != 0 ]; then
        [ -n "$force" ] ||
            die "virtual host $vhost exists: restore into a new one (another name), or --force to delete it and restore over it"
        "${rabbitmqctl[@]}" -q delete_vhost "$vhost"
        echo "deleted virtual host $vhost (--force)"
    fi
    users=$("${rabbitmqctl[@]}" -q list_users --formatter json | jq -c '[.[].user]')
    moved=$(mktemp)
    trap 'rm -f "$moved"' EXIT
    jq --arg v "$vhost" --argjson existing "$users" '
        def here: if has("vhost") then .vhost = $v else . end;
        .vhosts = [.vhosts[0] + {name: $v}]
        | .users = [.users[] | select(.name as $u | $existing | index($u) | not)]
        | .permissions |= map(here)
        | .topic_permissions |= map(here)
        | .policies |= map(here)
        | .parameters |= map(here)
        | .exchanges |= map(here)
        | .queues |= map(here)
        | .bindings |= map(here)' "$definitions" >"$moved"
    "${rabbitmqctl[@]}" -q import_definitions <"$moved" >/dev/null ||
        die "rabbitmqctl import_definitions failed"
    created=$(jq -r '[.users[].name] | join(", ")' "$moved")
    # The same objects as the backup.
    exchanges=$("${rabbitmqctl[@]}" -q list_exchanges --vhost "$vhost" name --formatter json |
        jq '[.[] | select(.name != "" and (.name | startswith("amq.") | not))] | length')
    queues=$("${rabbitmqctl[@]}" -q list_queues --vhost "$vhost" name --formatter json | jq length)
    bindings=$("${rabbitmqctl[@]}" -q list_bindings --vhost "$vhost" source_name --formatter json |
        jq '[.[] | select(.source_name != "")] | length')
    want_exchanges=$(jq '[.exchanges[] | select(.name | startswith("amq.") | not)] | length' "$definitions")
    [ "$exchanges" = "$want_exchanges" ] || die "virtual host $vhost has $exchanges exchanges, the backup $want_exchanges"
    [ "$queues" = "$(jq '.queues | length' "$definitions")" ] ||
        die "virtual host $vhost has $queues queues, the backup $(jq '.queues | length' "$definitions")"
    [ "$bindings" = "$(jq '.bindings | length' "$definitions")" ] ||
        die "virtual host $vhost has $bindings bindings, the backup $(jq '.bindings | length' "$definitions")"
    echo "restored virtual host $vhost: $exchanges exchanges, $queues queues, $bindings bindings;" \
        "users created: ${created:-none}"
fi
