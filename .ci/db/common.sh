# shellcheck shell=bash
# Helpers shared by the private PostgreSQL and MariaDB instances (.ci/databases.sh).
# Functions only; safe to source under `set -euo pipefail`.

# How long a server may take to accept connections before CI gives up on it.
CI_DB_READY_TIMEOUT=${CI_DB_READY_TIMEOUT:-60}

# _ci_db_alive PID
# True while PID runs. A server that died but is still our unreaped child is a zombie, which
# `kill -0` still reports as alive, so the state letter in /proc/PID/stat is checked too.
_ci_db_alive() {
  local stat
  [[ -n $1 ]] && read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# _ci_db_is_server PID
# True if PID is a database server this run may stop: our own child (launched by this shell,
# perhaps not yet exec'd into the server), or a process named like a server. The name check
# guards every kill of a PID read from a pid file left by an earlier run: the number may have
# been reused by an unrelated process since.
_ci_db_is_server() {
  local comm stat ppid
  _ci_db_alive "$1" && read -r comm 2>/dev/null <"/proc/$1/comm" || return 1
  [[ $comm == postgres || $comm == postmaster || $comm == mariadbd || $comm == mysqld ]] &&
    return 0
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  read -r _ ppid _ <<<"$stat"
  [[ $ppid == "$$" ]]
}

# _ci_db_free_port
# Prints a TCP port no socket in this network namespace uses. Ports come from 20000-31999,
# below Linux's ephemeral range (32768-60999), so outgoing connections made by the tests
# cannot take the port between this check and the server's bind. A collision with another
# listener that binds in that window is still possible; callers retry on "address in use".
_ci_db_free_port() {
  local used port hex
  used=$(awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 12000))
    printf -v hex '%04X' "$port"
    if ! grep -qx "$hex" <<<"$used"; then
      echo "$port"
      return 0
    fi
  done
  echo "ci: found no free TCP port in 20000-31999" >&2
  return 1
}

# _ci_db_as_user COMMAND...
# Runs COMMAND as the server user (see _ci_db_ensure_user). To start a server in the
# background, expand "${CI_DB_AS_USER[@]}" directly instead: a backgrounded function runs in a
# subshell whose PID is not the server's, while a backgrounded simple command is exec'd, and
# setpriv execs again, so `$!` is the server's own PID.
_ci_db_as_user() {
  "${CI_DB_AS_USER[@]}" "$@"
}

# _ci_db_ensure_user
# Sets CI_DB_USER, the account the servers run as, and CI_DB_AS_USER, the command prefix that
# switches to it. PostgreSQL refuses to run as root, and MariaDB should not either. As root
# that is a dedicated system user "lanyard-ci" (created on first use), so the servers own
# nothing else on the machine, or "nobody" if no user can be created; otherwise whoever runs
# CI. runuser is the fallback where setpriv is missing; it forks, so there `$!` is runuser's
# PID and stopping relies on the servers' pid files.
_ci_db_ensure_user() {
  CI_DB_AS_USER=()
  if ((EUID != 0)); then
    CI_DB_USER=$(id -un)
    return 0
  fi
  if id -u lanyard-ci >/dev/null 2>&1; then
    CI_DB_USER=lanyard-ci
  elif useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin lanyard-ci 2>/dev/null; then
    CI_DB_USER=lanyard-ci
  else
    echo "ci: could not create user lanyard-ci; running the databases as nobody" >&2
    CI_DB_USER=nobody
  fi
  if command -v setpriv >/dev/null; then
    CI_DB_AS_USER=(setpriv --reuid="$CI_DB_USER" --regid="$CI_DB_USER" --clear-groups --)
  else
    CI_DB_AS_USER=(runuser -u "$CI_DB_USER" --)
  fi
}

# _ci_db_start_server NAME LOG BIND_ERROR LAUNCH READY
# Picks a free port, runs `LAUNCH PORT` (which starts the server in the background, appending
# its output to LOG, and sets CI_DB_PID to `$!`), then polls `READY PORT` until it succeeds.
# Sets CI_DB_PORT and CI_DB_PID. If the server exits and its new log lines contain BIND_ERROR,
# another process took the port since the check: up to 3 ports are tried. Fails with the tail
# of the log if the server exits otherwise or is not ready within CI_DB_READY_TIMEOUT seconds.
#
# READY must reach the server through its unix socket, which exists only once that very
# server is up: on the TCP port, another server that won the race for it could answer.
_ci_db_start_server() {
  local name=$1 log=$2 bind_error=$3 launch=$4 ready=$5
  local attempt offset deadline
  for attempt in 1 2 3; do
    CI_DB_PORT=$(_ci_db_free_port)
    offset=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
    "$launch" "$CI_DB_PORT"

    deadline=$((SECONDS + CI_DB_READY_TIMEOUT))
    while ((SECONDS < deadline)); do
      if ! _ci_db_alive "$CI_DB_PID"; then
        break
      fi
      if "$ready" "$CI_DB_PORT" >/dev/null 2>&1; then
        return 0
      fi
      sleep 0.2
    done

    if _ci_db_alive "$CI_DB_PID"; then
      echo "ci: $name did not accept connections within ${CI_DB_READY_TIMEOUT}s;" \
        "last lines of $log:" >&2
    else
      wait "$CI_DB_PID" 2>/dev/null || true
      if ((attempt < 3)) && tail -c "+$offset" "$log" | grep -q "$bind_error"; then
        echo "ci: $name could not bind port $CI_DB_PORT, taken meanwhile; trying another" >&2
        continue
      fi
      echo "ci: $name exited during startup; last lines of $log:" >&2
    fi
    tail -c "+$offset" "$log" 2>/dev/null | tail -n 25 >&2
    return 1
  done
}

# _ci_db_stop_pids SIGNAL:PID...
# Sends each server its shutdown signal (PostgreSQL: INT, "fast"; MariaDB: TERM), all at once,
# repeating it every second: a server caught early in startup has not installed its handlers
# yet and drops the signal. Whatever still runs after 20 s is killed.
_ci_db_stop_pids() {
  local pair pid sig tick running
  for ((tick = 0; tick < 100; tick++)); do
    running=0
    for pair in "$@"; do
      pid=${pair#*:}
      _ci_db_is_server "$pid" || continue
      running=1
      ((tick % 5 == 0)) || continue
      sig=${pair%%:*}
      # Until it has exec'd into the server, our child is a shell or setpriv, and as a
      # background job of a non-interactive shell it ignores SIGINT.
      if ! grep -qxE 'postgres|postmaster|mariadbd|mysqld' "/proc/$pid/comm" 2>/dev/null; then
        sig=TERM
      fi
      kill "-$sig" "$pid" 2>/dev/null || true
    done
    ((running)) || break
    sleep 0.2
  done

  for pair in "$@"; do
    pid=${pair#*:}
    if _ci_db_is_server "$pid"; then
      echo "ci: database server $pid ignored SIG${pair%%:*} for 20s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    # Reap it if it is our exited child, so no zombie outlives the run. Never wait on a live
    # process: that would block for as long as it runs.
    _ci_db_alive "$pid" || wait "$pid" 2>/dev/null || true
  done
}

# _ci_db_pid_from_file FILE
# Prints the PID on the first line of FILE (PostgreSQL's postmaster.pid, MariaDB's pid-file).
_ci_db_pid_from_file() {
  local pid=
  if [[ -r $1 ]]; then
    read -r pid <"$1" || true
  fi
  [[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
  return 0
}
