# shellcheck shell=bash
# The private PostgreSQL instance for CI (.ci/databases.sh).
# Functions only; safe to source under `set -euo pipefail`.
# The CI_* globals set here are read by .ci/databases.sh; CI_DB_* come from db/common.sh.
# shellcheck disable=SC2034,SC2153

# _ci_pg_find
# Sets CI_PG_BIN (the directory holding postgres and initdb), CI_PSQL and CI_PG_ISREADY, or
# returns 1. PATH wins, resolved through symlinks to the real bin directory (images often link
# one version into /usr/local/bin); then the newest /usr/lib/postgresql/*/bin, where Debian
# puts the server binaries without linking them onto PATH.
_ci_pg_find() {
  local dir p
  local -a dirs=()
  if p=$(command -v postgres); then
    dirs+=("$(dirname "$(readlink -f "$p")")")
  fi
  for p in /usr/lib/postgresql/*/bin; do
    [[ -d $p ]] && dirs+=("$p")
  done
  if ((${#dirs[@]} > 1)); then
    mapfile -t dirs < <(printf '%s\n' "${dirs[0]}"; printf '%s\n' "${dirs[@]:1}" | sort -rV)
  fi

  for dir in "${dirs[@]}"; do
    [[ -x $dir/postgres && -x $dir/initdb ]] || continue
    CI_PG_BIN=$dir
    # Prefer the clients of the same version; fall back to whichever are on PATH.
    CI_PSQL=$dir/psql
    [[ -x $CI_PSQL ]] || CI_PSQL=$(command -v psql) || return 1
    CI_PG_ISREADY=$dir/pg_isready
    [[ -x $CI_PG_ISREADY ]] || CI_PG_ISREADY=$(command -v pg_isready) || return 1
    return 0
  done
  return 1
}

# _ci_pg_init DIR TLS_DIR
# Creates a cluster in DIR/data whose socket lives in DIR (kept 0700, so only the server user
# and root can reach the passwordless superuser "lanyard_admin" there). Over TCP every role
# needs a SCRAM password. Durability is switched off: the data dies with the run, and fsync
# dominates the time of the many small transactions the tests make.
_ci_pg_init() {
  local dir=$1 tls=$2
  _ci_db_as_user "$CI_PG_BIN/initdb" --pgdata="$dir/data" --username=lanyard_admin \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-locale --no-sync \
    --no-instructions >"$dir/initdb.log" 2>&1 || {
    echo "ci: initdb failed; last lines of $dir/initdb.log:" >&2
    tail -n 25 "$dir/initdb.log" >&2
    return 1
  }

  cat >>"$dir/data/postgresql.conf" <<EOF

# --- Lanyard CI (.ci/db/postgres.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
ssl = on
ssl_cert_file = '$tls/server.pem'
ssl_key_file = '$tls/server.key'
# Tests run in parallel, each with its own pool and database.
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

# _ci_pg_start DIR
# Starts the server on a free port; sets CI_PG_PORT and CI_PG_PID.
_ci_pg_start() {
  _ci_pg_dir=$1
  local rc=0
  _ci_db_start_server PostgreSQL "$1/postgres.log" 'could not bind' _ci_pg_launch _ci_pg_ready || rc=$?
  # Set even on failure, so that ci_db_stop can stop a server that was too slow.
  CI_PG_PORT=$CI_DB_PORT
  CI_PG_PID=$CI_DB_PID
  return "$rc"
}

# _ci_pg_launch PORT
# Starts postgres in the background (see _ci_db_start_server).
_ci_pg_launch() {
  "${CI_DB_AS_USER[@]}" "$CI_PG_BIN/postgres" -D "$_ci_pg_dir/data" -c "port=$1" \
    >>"$_ci_pg_dir/postgres.log" 2>&1 </dev/null &
  CI_DB_PID=$!
}

# _ci_pg_ready PORT
# True once the server accepts connections on its unix socket.
_ci_pg_ready() {
  "$CI_PG_ISREADY" --quiet --host="$_ci_pg_dir" --port="$1" --timeout=1
}

# _ci_pg_provision DIR USER PASSWORD DATABASE
# Creates the test role and its database. The role may create databases (each test makes its
# own) but is not a superuser, like the role a real deployment would give Lanyard.
_ci_pg_provision() {
  local dir=$1 user=$2 password=$3 db=$4
  "$CI_PSQL" --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --host="$dir" --port="$CI_PG_PORT" \
    --username=lanyard_admin --dbname=postgres \
    --command="CREATE ROLE $user LOGIN CREATEDB PASSWORD '$password'" \
    --command="CREATE DATABASE $db OWNER $user" >/dev/null
}

# _ci_pg_stale_pid DIR
# Prints the PID of a server an earlier run left in DIR, if any.
_ci_pg_stale_pid() {
  _ci_db_pid_from_file "$1/data/postmaster.pid"
}
