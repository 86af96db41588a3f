# shellcheck shell=bash
# Independent SPIFFE clients for the interop end-to-end tests (crates/cli/tests/e2e/interop_*):
# py-spiffe in a virtualenv, and the machine's Go with go-spiffe's modules downloaded.
#
# Sourced by .ci/run, which calls ci_clients_missing_packages while it collects Debian packages
# and ci_clients_prepare once they are installed. Defines functions only, so it is safe to
# source under `set -euo pipefail`.
#
# Exports:
#   LANYARD_TEST_PYTHON  the virtualenv's python3, which imports the pinned `spiffe`

_ci_clients_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_ci_clients_venv=$_ci_clients_root/target/interop-venv
_ci_clients_requirements=$_ci_clients_root/tests/interop/requirements.txt
_ci_clients_go_module=$_ci_clients_root/tests/interop/go

# ci_clients_missing_packages
# Prints the Debian packages to install, one a line: python3 and python3-venv when there is no
# Python that can make a virtualenv, golang-go when there is no `go` at all. The machine's own
# Go is preferred: Debian's is older than go-spiffe needs on some releases (checked below).
ci_clients_missing_packages() {
  if ! command -v python3 >/dev/null; then
    echo python3
    echo python3-venv
  elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits ensurepip out of python3; without it `python3 -m venv` fails.
    echo python3-venv
  fi
  _ci_clients_find_go || echo golang-go
}

# ci_clients_prepare
# Creates the virtualenv with the pinned client (reusing one that already matches), downloads
# the Go module's dependencies and builds it once, so that the tests neither reach a registry
# nor spend their time compiling gRPC.
ci_clients_prepare() {
  local started=$SECONDS
  _ci_clients_python
  _ci_clients_go
  local py_spiffe go_spiffe
  py_spiffe=$("$LANYARD_TEST_PYTHON" -c \
    'from importlib.metadata import version; print(version("spiffe"))')
  go_spiffe=$(cd "$_ci_clients_go_module" &&
    go list -m -f '{{.Version}}' github.com/spiffe/go-spiffe/v2)
  echo "ci: interop clients ready in $((SECONDS - started))s: spiffe $py_spiffe on" \
    "$("$LANYARD_TEST_PYTHON" --version), go-spiffe $go_spiffe on $(go env GOVERSION)"
}

# --- Helpers --------------------------------------------------------------------------

_ci_clients_python() {
  local python=$_ci_clients_venv/bin/python3
  # A virtualenv left by an earlier run is reused only if it still runs and holds exactly
  # the pinned packages; otherwise (another Python, a changed pin) it is made anew.
  if [[ ! -x $python ]] || ! _ci_clients_venv_matches "$python"; then
    python3 -m venv --clear "$_ci_clients_venv"
    "$python" -m pip install -q -r "$_ci_clients_requirements"
  fi
  "$python" -c 'import spiffe' || {
    echo "ci: $python cannot import spiffe after installing $_ci_clients_requirements" >&2
    return 1
  }
  export LANYARD_TEST_PYTHON=$python
}

# _ci_clients_venv_matches PYTHON
# Succeeds when the virtualenv holds exactly the packages requirements.txt pins, no more.
_ci_clients_venv_matches() {
  local installed pinned
  installed=$("$1" -m pip freeze 2>/dev/null | sort -f) || return 1
  pinned=$(grep -Ev '^[[:space:]]*(#|$)' "$_ci_clients_requirements" | sort -f)
  [[ $installed == "$pinned" ]]
}

_ci_clients_go() {
  _ci_clients_find_go || {
    echo "ci: go not found after installing golang-go" >&2
    return 1
  }
  local need have
  need=$(awk '$1 == "go" {print $2; exit}' "$_ci_clients_go_module/go.mod")
  have=$(go env GOVERSION)
  have=${have#go}
  # sort -V puts the older first: the machine's Go must not be older than go.mod's line.
  if [[ $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1) != "$need" ]]; then
    echo "ci: go $have is older than go $need, which $_ci_clients_go_module/go.mod needs" >&2
    return 1
  fi
  # -mod=mod: resolve from go.mod and go.sum (no vendor directory); the machine's GOFLAGS stay.
  (
    cd "$_ci_clients_go_module" &&
      export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" &&
      go mod download &&
      mkdir -p "$_ci_clients_root/target/interop-go" &&
      go build -o "$_ci_clients_root/target/interop-go/interop" .
  ) || {
    echo "ci: could not download or build $_ci_clients_go_module" >&2
    return 1
  }
}

# Finds `go` on the PATH or in the usual install directory, adding that to the PATH.
_ci_clients_find_go() {
  command -v go >/dev/null && return 0
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="$PATH:/usr/local/go/bin"
    return 0
  fi
  return 1
}
