# shellcheck shell=bash
# The private MariaDB instance for CI, serving LANYARD_TEST_MYSQL (.ci/databases.sh).
# Functions only; safe to source under `set -euo pipefail`.
# The CI_* globals set here are read by .ci/databases.sh; CI_DB_* come from db/common.sh.
# shellcheck disable=SC2034,SC2153

# _ci_my_find
# Sets CI_MY_SERVER, CI_MY_INSTALL_DB, CI_MY_CLIENT and CI_MY_ADMIN, or returns 1. Debian
# installs the server in /usr/sbin, which is not on a non-root PATH; the mysql* names are the
# older spellings of the same programs.
_ci_my_find() {
  CI_MY_SERVER=$(_ci_my_first mariadbd /usr/sbin/mariadbd mysqld /usr/sbin/mysqld) &&
    CI_MY_INSTALL_DB=$(_ci_my_first mariadb-install-db mysql_install_db) &&
    CI_MY_CLIENT=$(_ci_my_first mariadb mysql) &&
    CI_MY_ADMIN=$(_ci_my_first mariadb-admin mysqladmin)
}

# _ci_my_init DIR TLS_DIR
# Writes DIR/my.cnf, the only option file the server and its bootstrap read (so nothing in
# /etc/mysql applies), and creates the system tables in DIR/data. root@localhost has no
# password and is reachable only through the socket in DIR (0700, so only the server user
# and root can use it).
_ci_my_init() {
  local dir=$1 tls=$2
  cat >"$dir/my.cnf" <<EOF
[mysqld]
datadir = $dir/data
socket = $dir/mariadb.sock
pid-file = $dir/mariadb.pid
bind-address = 127.0.0.1
# Grants name 127.0.0.1, not "localhost"; no DNS lookups on connect.
skip-name-resolve
# What Debian's packaged configuration uses; the compiled-in default is latin1.
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
ssl-ca = $tls/ca.pem
ssl-cert = $tls/server.pem
ssl-key = $tls/server.key
# Tests run in parallel, each with its own pool and database.
max-connections = 300
# Durability off: the data dies with the run. Native AIO off: containers often have too
# little aio-max-nr for it and InnoDB then fails to start.
innodb-flush-log-at-trx-commit = 0
innodb-doublewrite = 0
innodb-use-native-aio = 0
innodb-log-file-size = 16M
innodb-buffer-pool-size = 64M
EOF

  mkdir -p "$dir/data"
  if ((EUID == 0)); then
    chown "$CI_DB_USER:" "$dir/data"
  fi
  _ci_db_as_user "$CI_MY_INSTALL_DB" --defaults-file="$dir/my.cnf" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install-db.log" 2>&1 || {
    echo "ci: $CI_MY_INSTALL_DB failed; last lines of $dir/install-db.log:" >&2
    tail -n 25 "$dir/install-db.log" >&2
    return 1
  }
}

# _ci_my_start DIR
# Starts the server on a free port; sets CI_MY_PORT and CI_MY_PID.
_ci_my_start() {
  _ci_my_dir=$1
  local rc=0
  _ci_db_start_server MariaDB "$1/mariadb.log" 'Address already in use' _ci_my_launch _ci_my_ready || rc=$?
  # Set even on failure, so that ci_db_stop can stop a server that was too slow.
  CI_MY_PORT=$CI_DB_PORT
  CI_MY_PID=$CI_DB_PID
  return "$rc"
}

# _ci_my_launch PORT
# Starts mariadbd in the background (see _ci_db_start_server).
_ci_my_launch() {
  "${CI_DB_AS_USER[@]}" "$CI_MY_SERVER" --defaults-file="$_ci_my_dir/my.cnf" --port="$1" \
    >>"$_ci_my_dir/mariadb.log" 2>&1 </dev/null &
  CI_DB_PID=$!
}

# _ci_my_ready PORT
# True once the server answers on its unix socket.
_ci_my_ready() {
  "$CI_MY_ADMIN" --no-defaults --socket="$_ci_my_dir/mariadb.sock" --user=root \
    --connect-timeout=1 ping
}

# _ci_my_provision DIR USER PASSWORD DATABASE
# Creates the test user and its database. The user holds every data and schema privilege on
# every database (each test creates and drops its own), but none of the server-administration
# ones (SUPER, FILE, SHUTDOWN, PROCESS, GRANT OPTION...), like the account a real deployment
# would give Lanyard.
_ci_my_provision() {
  local dir=$1 user=$2 password=$3 db=$4
  "$CI_MY_CLIENT" --no-defaults --socket="$dir/mariadb.sock" --user=root --batch <<EOF
CREATE USER '$user'@'%' IDENTIFIED BY '$password';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES,
  CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE,
  ALTER ROUTINE, TRIGGER, EVENT ON *.* TO '$user'@'%';
CREATE DATABASE \`$db\`;
EOF
}

# _ci_my_stale_pid DIR
# Prints the PID of a server an earlier run left in DIR, if any.
_ci_my_stale_pid() {
  _ci_db_pid_from_file "$1/mariadb.pid"
}

# _ci_my_first NAME_OR_PATH...
# Prints the first argument that is an executable path or a command on PATH.
_ci_my_first() {
  local candidate
  for candidate in "$@"; do
    if [[ $candidate == /* ]]; then
      [[ -x $candidate ]] && echo "$candidate" && return 0
    elif command -v "$candidate" 2>/dev/null; then
      return 0
    fi
  done
  return 1
}
