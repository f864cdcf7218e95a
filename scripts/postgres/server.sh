#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: Debian's postgresql package, a cluster
# made with initdb in a directory of ours, on a loopback port, started with pg_ctl.
#
#   scripts/postgres/server.sh start DIR PORT   # prints the admin URL on stdout
#   scripts/postgres/server.sh stop DIR
#   scripts/postgres/server.sh replica DIR PORT PRIMARY_PORT  # a streaming replica
#   scripts/postgres/server.sh promote DIR      # the replica becomes a primary
#   scripts/postgres/server.sh tls DIR          # TLS on a running server (below)
#
# `tls` makes a CA (DIR/tls/ca.pem), a server certificate it signed for DNS name
# localhost only (not 127.0.0.1), a client certificate for the role hearth
# (client.crt, client.key) and a second, unrelated CA (other-ca.pem); turns ssl on;
# and refuses plain TCP to the database `tls` and anything but a client certificate
# to the database `tlscert`. Other databases take either, as before.
#
# For a failover that loses nothing acknowledged, make the primary's commits wait for
# the replica once it runs: ALTER SYSTEM SET synchronous_standby_names = '*' and
# pg_reload_conf() (tests/postgres.rs does).
#
# The cluster trusts loopback connections of the role `hearth` (superuser), uses the
# C locale (ORDER BY text as SQLite orders it) and UTF-8, and does without fsync (a
# test server: the data does not outlive the run) unless HEARTH_PG_FSYNC=on (the
# benchmarks, for production's durable commits). PostgreSQL refuses to run as
# root: as root, the cluster belongs to the `postgres` user the package creates.
# The tests make a database of their own on it for each hearthd they start
# (tests/common, HEARTH_TEST_POSTGRES).
set -euo pipefail

cmd=${1:?start DIR PORT | stop DIR}
dir=${2:?directory}

bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/pg_ctl ]] && { echo "$d"; return 0; }
    done
    return 1
}

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if ! bin=$(bindir); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >&2
    fi
    bin=$(bindir) || { echo "server.sh: PostgreSQL (Debian's postgresql) is not installed" >&2; exit 1; }
fi

case $cmd in
start)
    port=${3:?port}
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        as_owner "$bin/initdb" -D "$dir/data" -U hearth --auth=trust --locale=C -E UTF8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    durable="-c fsync=off -c full_page_writes=off"
    [[ ${HEARTH_PG_FSYNC:-off} == on ]] && durable=''
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $durable -c max_connections=400 -c shared_buffers=64MB" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://hearth@127.0.0.1:$port/postgres"
    ;;
replica)
    port=${3:?port}
    primary_port=${4:?primary port}
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U hearth -D "$dir/data" -R -X stream \
        -c fast >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://hearth@127.0.0.1:$port/postgres"
    ;;
tls)
    command -v openssl >/dev/null || { echo "server.sh: openssl is missing" >&2; exit 1; }
    t=$dir/tls
    mkdir -p "$t"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    for ca in ca other-ca; do
        openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=hearth test $ca" -keyout "$t/$ca.key" -out "$t/$ca.pem" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    done
    sign() { # NAME CN EXTENSIONS
        openssl req "${ec[@]}" -subj "/CN=$2" -keyout "$t/$1.key" -out "$t/$1.csr" 2>/dev/null
        openssl x509 -req -in "$t/$1.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 2 \
            -out "$t/$1.crt" -extfile <(printf '%s\n' "basicConstraints=CA:FALSE" "$3") 2>/dev/null
    }
    sign server localhost $'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth'
    sign client hearth 'extendedKeyUsage=clientAuth'
    chmod 600 "$t"/*.key
    [[ $(id -u) -eq 0 ]] && chown -R postgres: "$t" && chown root: "$t/client.key"
    cat >>"$dir/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$t/server.crt'
ssl_key_file = '$t/server.key'
ssl_ca_file = '$t/ca.pem'
CONF
    hba=$dir/data/pg_hba.conf
    { printf '%s\n' "hostnossl tls all 127.0.0.1/32 reject" "hostssl tlscert all 127.0.0.1/32 cert" \
        "host tlscert all 127.0.0.1/32 reject"; cat "$hba"; } >"$hba.new"
    mv "$hba.new" "$hba"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$hba"
    as_owner "$bin/pg_ctl" -D "$dir/data" reload >&2
    ;;
promote)
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 promote >&2
    ;;
stop)
    [[ -f $dir/data/postmaster.pid ]] || exit 0
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    ;;
*)
    echo "server.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
