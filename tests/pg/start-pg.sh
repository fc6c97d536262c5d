#!/bin/sh
# Starts a throw-away PostgreSQL for tests and CI: initdb + pg_ctl from the
# Debian `postgresql` package in a temporary directory, as an unprivileged
# user, listening on 127.0.0.1 at a free port and on a Unix socket in that
# directory. Nothing here uses or needs a system service.
#
#   tests/pg/start-pg.sh [--owner PID]   start; prints two lines on stdout:
#                                        the URL, then the directory
#   tests/pg/start-pg.sh --stop DIR      stop that server, remove DIR
#
# With --owner, the server stops by itself (and its directory goes) within
# a second of process PID ending: the Rust helper (tests/common/pg.rs)
# passes its own pid, so no test run leaves a server behind, even one
# killed with SIGKILL.
#
# The URL is postgres://rivr@127.0.0.1:PORT/postgres (trust auth, local
# only). The cluster runs with fsync off: it is for tests, not for data.
set -eu

bin=""
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && bin="$d"
done
if [ -z "$bin" ]; then
    echo "start-pg.sh: no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
    exit 1
fi

# PostgreSQL refuses to run as root: run it as a user without privileges.
as_user() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid="$pg_user" --regid="$pg_group" --init-groups -- "$@"
    else
        "$@"
    fi
}
if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then
        pg_user=postgres
    else
        pg_user=nobody
    fi
    pg_group=$(id -gn "$pg_user")
fi

if [ "${1:-}" = "--stop" ]; then
    dir=${2:?"usage: start-pg.sh --stop DIR"}
    [ -d "$dir/data" ] && as_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    exit 0
fi
owner=""
if [ "${1:-}" = "--owner" ]; then
    owner=${2:?"usage: start-pg.sh --owner PID"}
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/rivr-pg.XXXXXX")
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown "$pg_user:$pg_group" "$dir"
as_user "$bin/initdb" -D "$dir/data" -U rivr --auth=trust --no-locale -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1 || {
    echo "start-pg.sh: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A free port can be taken between the probe and the bind: try a few.
started=""
for _ in 1 2 3 4 5; do
    port=$(free_port)
    if as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o \
        "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=300 -c shared_buffers=32MB" >/dev/null 2>&1; then
        started=1
        break
    fi
done
if [ -z "$started" ]; then
    echo "start-pg.sh: postgres did not start:" >&2
    cat "$dir/server.log" >&2
    rm -rf "$dir"
    exit 1
fi

if [ -n "$owner" ]; then
    # The watcher outlives this script; its output goes nowhere so the
    # caller reading our stdout sees EOF.
    (
        while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
        as_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop
        rm -rf "$dir"
    ) </dev/null >/dev/null 2>&1 &
fi

echo "postgres://rivr@127.0.0.1:$port/postgres"
echo "$dir"
