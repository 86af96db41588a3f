#!/usr/bin/env bash
# shellcheck shell=bash
# Private PostgreSQL and MariaDB servers for the datastore tests.
#
# Sourced by .ci/run, which calls ci_db_missing_packages, ci_db_start and (through the EXIT
# trap ci_db_start installs) ci_db_stop. Run directly, it starts the servers, runs one
# command with the variables below set, and stops them:
#
#     .ci/databases.sh cargo test -p lanyard-datastore
#
# Why private servers rather than the system services: CI must not depend on, or disturb,
# whatever a machine's own PostgreSQL or MariaDB holds; each run gets empty servers on free
# ports, with TLS from a CA made for that run, and leaves nothing behind.
#
# Exports:
#   LANYARD_TEST_POSTGRES  postgres://lanyard_test:PASSWORD@127.0.0.1:PORT/lanyard_ci
#   LANYARD_TEST_MYSQL     mysql://lanyard_test:PASSWORD@127.0.0.1:PORT/lanyard_ci
#   LANYARD_TEST_DB_CA     CA certificate (PEM) that issued both servers' certificates, for
#                          sslmode=verify-ca / verify-full (SANs: 127.0.0.1, ::1, localhost)
# Both servers also accept plain connections. lanyard_test may create and drop databases.
#
# Everything lives in one directory, /tmp/lanyard-ci-db.XXXXXX (/tmp rather than the
# checkout, because the unprivileged server user must be able to reach it; a checkout under
# /root is not reachable). Server logs are copied to target/ci-postgres.log and
# target/ci-mariadb.log when the servers stop.

_ci_db_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=.ci/apt.sh
source "$_ci_db_here/apt.sh"
# shellcheck source=.ci/db/common.sh
source "$_ci_db_here/db/common.sh"
# shellcheck source=.ci/db/tls.sh
source "$_ci_db_here/db/tls.sh"
# shellcheck source=.ci/db/postgres.sh
source "$_ci_db_here/db/postgres.sh"
# shellcheck source=.ci/db/mariadb.sh
source "$_ci_db_here/db/mariadb.sh"

# ci_db_missing_packages
# Prints the Debian packages to install, one a line: postgresql and/or mariadb-server when
# their server or client programs are missing, openssl (for the TLS material) likewise.
ci_db_missing_packages() {
  command -v openssl >/dev/null || echo openssl
  _ci_pg_find || echo postgresql
  _ci_my_find || echo mariadb-server
}

# ci_db_start
# Starts both servers, creates the test user and database on each, exports the variables
# listed at the top, and installs the EXIT trap that stops the servers. Fails, showing the
# server's log, if either is not accepting connections within 60 s.
ci_db_start() {
  local started=$SECONDS
  _ci_pg_find || { echo "ci: PostgreSQL server programs not found" >&2 && return 1; }
  _ci_my_find || { echo "ci: MariaDB server programs not found" >&2 && return 1; }
  _ci_db_ensure_user
  _ci_db_reap_stale

  CI_DB_DIR=$(mktemp -d "$(_ci_db_tmp_base)/lanyard-ci-db.XXXXXX")
  echo "$$" >"$CI_DB_DIR/owner.pid"
  # From here on, whatever happens, the servers and the directory go away when CI exits.
  trap _ci_db_on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  chmod 755 "$CI_DB_DIR"
  mkdir -m 700 "$CI_DB_DIR/pg" "$CI_DB_DIR/mariadb"
  if ((EUID == 0)); then
    chown "$CI_DB_USER:" "$CI_DB_DIR/pg" "$CI_DB_DIR/mariadb"
  fi
  _ci_db_check_reachable
  _ci_db_make_tls "$CI_DB_DIR/tls"

  # initdb and mariadb-install-db take a few seconds each; run them side by side.
  _ci_pg_init "$CI_DB_DIR/pg" "$CI_DB_DIR/tls" &
  local pg_init=$!
  _ci_my_init "$CI_DB_DIR/mariadb" "$CI_DB_DIR/tls"
  wait "$pg_init"

  _ci_pg_start "$CI_DB_DIR/pg"
  _ci_my_start "$CI_DB_DIR/mariadb"

  local password
  password=$(openssl rand -hex 16)
  _ci_pg_provision "$CI_DB_DIR/pg" lanyard_test "$password" lanyard_ci
  _ci_my_provision "$CI_DB_DIR/mariadb" lanyard_test "$password" lanyard_ci

  export LANYARD_TEST_POSTGRES="postgres://lanyard_test:$password@127.0.0.1:$CI_PG_PORT/lanyard_ci"
  export LANYARD_TEST_MYSQL="mysql://lanyard_test:$password@127.0.0.1:$CI_MY_PORT/lanyard_ci"
  export LANYARD_TEST_DB_CA="$CI_DB_DIR/tls/ca.pem"
  echo "ci: databases ready in $((SECONDS - started))s (as $CI_DB_USER, in $CI_DB_DIR):" \
    "PostgreSQL $("$CI_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$CI_PG_PORT," \
    "MariaDB $("$CI_MY_SERVER" --version | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+-MariaDB' || echo '?')" \
    "on 127.0.0.1:$CI_MY_PORT"
}

# ci_db_stop
# Stops the servers ci_db_start started, keeps their logs in target/, and removes their
# directory. Safe to call twice.
ci_db_stop() {
  [[ -n ${CI_DB_DIR:-} && -d $CI_DB_DIR ]] || return 0
  _ci_db_stop_dir "$CI_DB_DIR" "${CI_PG_PID:-}" "${CI_MY_PID:-}"

  local target="$_ci_db_here/../target"
  if [[ -d $target ]]; then
    cp "$CI_DB_DIR/pg/postgres.log" "$target/ci-postgres.log" 2>/dev/null || true
    cp "$CI_DB_DIR/mariadb/mariadb.log" "$target/ci-mariadb.log" 2>/dev/null || true
  fi
  rm -rf "$CI_DB_DIR"
  CI_DB_DIR=
}

# --- Helpers --------------------------------------------------------------------------

# The EXIT trap. Keeps the script's exit status: a failing command inside a trap would
# otherwise replace it, and CI must exit with the tests' status.
_ci_db_on_exit() {
  local status=$?
  ci_db_stop || true
  exit "$status"
}

# _ci_db_stop_dir DIR [PG_PID MY_PID]
# Stops the servers of one run directory. The pid files name the servers themselves; the
# PIDs recorded at launch are the fallback for a server that died before writing its file.
_ci_db_stop_dir() {
  local dir=$1 pg_pid my_pid
  pg_pid=$(_ci_pg_stale_pid "$dir/pg")
  my_pid=$(_ci_my_stale_pid "$dir/mariadb")
  [[ -n $pg_pid ]] || pg_pid=${2:-}
  [[ -n $my_pid ]] || my_pid=${3:-}
  local -a pairs=()
  # PostgreSQL: SIGINT is a "fast" shutdown, which does not wait for clients to disconnect.
  [[ -n $pg_pid ]] && pairs+=("INT:$pg_pid")
  [[ -n $my_pid ]] && pairs+=("TERM:$my_pid")
  if ((${#pairs[@]})); then
    _ci_db_stop_pids "${pairs[@]}"
  fi
}

# _ci_db_reap_stale
# Cleans up after runs that were killed before their EXIT trap ran (SIGKILL, a lost
# machine): any run directory whose owner process is gone has its servers stopped and is
# removed. A run still in progress (its owner alive) is left alone.
_ci_db_reap_stale() {
  local dir owner
  for dir in "$(_ci_db_tmp_base)"/lanyard-ci-db.*; do
    [[ -d $dir ]] || continue
    owner=$(_ci_db_pid_from_file "$dir/owner.pid")
    if [[ -n $owner ]] && _ci_db_alive "$owner"; then
      continue
    fi
    # No owner file yet: another run may have created the directory this very moment.
    if [[ -z $owner ]] && (($(date +%s) - $(stat -c %Y "$dir") < 60)); then
      continue
    fi
    echo "ci: removing $dir, left by an earlier run" >&2
    _ci_db_stop_dir "$dir"
    rm -rf "$dir"
  done
}

# _ci_db_tmp_base
# Where run directories go: /tmp for root (TMPDIR may point somewhere the server user cannot
# reach), TMPDIR otherwise.
_ci_db_tmp_base() {
  if ((EUID == 0)); then
    echo /tmp
  else
    echo "${TMPDIR:-/tmp}"
  fi
}

# _ci_db_check_reachable
# Fails early, with the reason, if the server user cannot write its directories; otherwise
# initdb would fail later with a less obvious message.
_ci_db_check_reachable() {
  if ! _ci_db_as_user test -w "$CI_DB_DIR/pg" -a -w "$CI_DB_DIR/mariadb"; then
    echo "ci: user $CI_DB_USER cannot write $CI_DB_DIR/pg: is a parent directory closed to it?" >&2
    return 1
  fi
}

# --- Run directly ---------------------------------------------------------------------

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  if (($# == 0)); then
    echo "usage: $0 COMMAND [ARG...]   (runs COMMAND with private databases up)" >&2
    exit 2
  fi
  mapfile -t _ci_db_packages < <(ci_db_missing_packages)
  ci_apt_install "${_ci_db_packages[@]}"
  ci_db_start
  set +e
  "$@"
  exit $?
fi
