# shellcheck shell=bash
# Sourced by .ci/run and .ci/databases.sh: installs Debian packages for CI.
# Defines functions only, so it is safe to source under `set -euo pipefail`.

# ci_apt_install PACKAGE...
# Installs the packages without starting any service they ship. Server packages such as
# postgresql and mariadb-server start their system-wide service from the postinst script;
# CI runs private instances instead (.ci/databases.sh), so a system service would only hold
# ports, memory and /var/lib state. Debian's invoke-rc.d asks /usr/sbin/policy-rc.d first,
# and exit code 101 means "action forbidden".
ci_apt_install() {
  if (($# == 0)); then
    return 0
  fi
  # Callers collect needs independently (openssl is needed by the tests and the databases).
  local -a packages
  mapfile -t packages < <(printf '%s\n' "$@" | sort -u)
  set -- "${packages[@]}"
  if ((EUID != 0)); then
    echo "ci: need root to install $*; install them or run as root" >&2
    return 1
  fi
  echo "ci: installing $*"

  local policy=/usr/sbin/policy-rc.d ours=0 rc=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# Written by lanyard .ci/apt.sh for the duration of one install.\nexit 101\n' \
      >"$policy"
    chmod 755 "$policy"
    ours=1
  fi

  # DPkg::Lock::Timeout: a CI image may still be running unattended-upgrades at boot; wait
  # for its lock rather than failing at once.
  {
    apt-get -o DPkg::Lock::Timeout=300 update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "$@" >/dev/null
  } || rc=$?

  if ((ours)); then
    rm -f "$policy"
  fi
  if ((rc != 0)); then
    echo "ci: apt-get install $* failed with status $rc" >&2
  fi
  return "$rc"
}
