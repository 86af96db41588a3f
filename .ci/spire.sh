#!/usr/bin/env bash
# shellcheck shell=bash
# SPIRE's own binaries for the interop tests (crates/cli/tests/spire_interop): spire-server and
# spire-agent at one pinned version, built from the Go module proxy with the machine's Go into
# a cache outside the repository, so nothing of SPIRE is committed and a second run builds
# nothing.
#
# Run it (`.ci/spire.sh` prints the directory holding both binaries) or source it and call
# ci_spire_prepare, which also exports:
#   LANYARD_TEST_SPIRE_BIN  the directory holding spire-server and spire-agent
#
# Settings (environment):
#   LANYARD_SPIRE_CACHE     cache root, default $HOME/.cache/lanyard-spire; binaries go to
#                           <root>/<version>/bin, the scratch module to <root>/<version>/module
#
# SPIRE is a program, not a library, and the module proxy lists no version of it, so
# `go install ...@version` is refused; the pinned version is named with `go get -tool` in a
# scratch module, which resolves SPIRE's own go.mod, and `go install` then builds the tool.

_ci_spire_version=v1.13.3
_ci_spire_module=github.com/spiffe/spire

# ci_spire_prepare
# Builds both binaries unless the cache already holds them, exports LANYARD_TEST_SPIRE_BIN and
# prints it. Fails (non-zero) with the go command's own message when the proxy refuses a
# module SPIRE needs, so the failure names the module and version.
ci_spire_prepare() {
  local root=${LANYARD_SPIRE_CACHE:-$HOME/.cache/lanyard-spire}
  local dir=$root/$_ci_spire_version
  local bin=$dir/bin
  local started=$SECONDS

  if ! _ci_spire_built "$bin"; then
    _ci_spire_build "$dir" || {
      echo "ci: could not build SPIRE $_ci_spire_version (see the go command's error above)" >&2
      return 1
    }
    echo "ci: built SPIRE $_ci_spire_version in $((SECONDS - started))s into $bin" >&2
  fi

  export LANYARD_TEST_SPIRE_BIN=$bin
  echo "$bin"
}

# --- Helpers --------------------------------------------------------------------------

# _ci_spire_built BIN
# Succeeds when both binaries are in BIN and report the pinned version, so a cache left by
# another version (or a half-finished build) is rebuilt rather than trusted.
_ci_spire_built() {
  local name
  for name in spire-server spire-agent; do
    [[ -x $1/$name ]] || return 1
    [[ $("$1/$name" --version 2>&1) == *"${_ci_spire_version#v}"* ]] || return 1
  done
}

# _ci_spire_build DIR
# Makes the scratch module in DIR/module and installs both commands into DIR/bin. The build
# cache is private to this build and removed after it: SPIRE's ~1,000 packages leave about
# 2.5 GB there, of no use once the binaries exist.
_ci_spire_build() {
  local dir=$1
  mkdir -p "$dir/module" "$dir/bin"
  (
    cd "$dir/module" || exit 1
    # The machine's GOFLAGS stay; -mod=mod resolves from go.mod and go.sum alone.
    export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
    export GOBIN=$dir/bin
    export GOCACHE=$dir/go-build
    trap 'rm -rf "$GOCACHE"' EXIT
    [[ -f go.mod ]] || go mod init lanyard.test/spire-tools >/dev/null 2>&1 || exit 1
    _ci_spire_toolchain || exit 1
    local cmd
    for cmd in spire-server spire-agent; do
      go get -tool "$_ci_spire_module/cmd/$cmd@$_ci_spire_version" || exit 1
    done
    for cmd in spire-server spire-agent; do
      go install "$_ci_spire_module/cmd/$cmd" || exit 1
    done
  )
}

# _ci_spire_toolchain
# SPIRE's go.mod may name a newer Go than the machine's. Only then is GOTOOLCHAIN set, to the
# one newer toolchain the module proxy serves (go1.27.3); an older go line needs nothing.
_ci_spire_toolchain() {
  local gomod need have
  gomod=$(GOTOOLCHAIN=local go mod download -json "$_ci_spire_module@$_ci_spire_version" |
    awk -F'"' '$2 == "GoMod" {print $4}')
  need=$(awk '$1 == "go" {print $2; exit}' "$gomod")
  [[ -n $need ]] || {
    echo "ci: no go line in $_ci_spire_module@$_ci_spire_version's go.mod" >&2
    return 1
  }
  have=$(GOTOOLCHAIN=local go env GOVERSION)
  have=${have#go}
  if [[ $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1) != "$need" ]]; then
    echo "ci: SPIRE needs go $need, newer than the machine's $have: using go1.27.3" >&2
    export GOTOOLCHAIN=go1.27.3
  else
    export GOTOOLCHAIN=local
  fi
}

# Run as a program: build if needed and print the directory.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  ci_spire_prepare
fi
