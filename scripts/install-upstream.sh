#!/usr/bin/env bash
# Installs the upstream Dragonfly programs that `npm run test:interop` runs beside ours, by name, with their
# ordinary clients, and skips whatever is installed already:
#
#   apt    Debian packages: mariadb-server + redis-server (the manager's database and cache, and the scheduler's
#          job queue)
#   go     the Go scheduler and manager, d7y.io/dragonfly/v2 $DF_GO_VERSION (cmd/scheduler, cmd/manager), as
#          `go install` would put them: $(go env GOPATH)/bin/{scheduler,manager}
#   rust   the Rust client, crate dragonfly-client $DF_RUST_VERSION (dfdaemon, dfget, dfcache, dfctl, dfstore),
#          with `cargo install --locked`: ~/.cargo/bin; first the Debian packages its build needs
#          (protobuf-compiler and libprotobuf-dev, whose google/protobuf/*.proto the dragonfly-api crate's build
#          imports; clang, libclang-dev, cmake)
#
#   scripts/install-upstream.sh              all three
#   scripts/install-upstream.sh apt go       only those (CI: the Rust build does not fit its time budget)
#
# Prints each step on stderr; exits non-zero, naming what failed, when a step fails. Times: see docs/interop.md.
set -euo pipefail

DF_GO_VERSION="${DF_GO_VERSION:-v2.5.1}"
DF_RUST_VERSION="${DF_RUST_VERSION:-1.5.10}"
GO_MODULE=d7y.io/dragonfly/v2
APT_PACKAGES=(mariadb-server redis-server)
RUST_BUILD_PACKAGES=(protobuf-compiler libprotobuf-dev clang libclang-dev cmake)

say() { printf 'install-upstream: %s\n' "$*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}
SUDO=()
[ "$(id -u)" = 0 ] || SUDO=(sudo)

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(apt go rust)
for s in "${steps[@]}"; do
  case "$s" in apt | go | rust) ;; *) die "unknown step '$s' (expected apt, go or rust)" ;; esac
done

# Installs the Debian packages among "$@" that are not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "apt: $* already installed"
    return
  fi
  say "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q >&2 || die "apt-get update"
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]}"
}

install_apt() { apt_install "${APT_PACKAGES[@]}"; }

# Whether $1 is a Go binary built from $GO_MODULE at $DF_GO_VERSION (as the main module or as a dependency).
go_binary_ok() {
  [ -x "$1" ] && go version -m "$1" 2>/dev/null |
    grep -Eq "^[[:space:]]+(mod|dep)[[:space:]]+${GO_MODULE//./\\.}[[:space:]]+${DF_GO_VERSION//./\\.}([[:space:]]|$)"
}

install_go() {
  command -v go >/dev/null || die "go: the \`go\` command is not on PATH (Go >= 1.25 is needed for ${GO_MODULE}@${DF_GO_VERSION})"
  # The module's go.mod says `go 1.25.5`: an older go would try to fetch a newer toolchain, or fail on it.
  local have minor
  have="$(go env GOVERSION)"
  minor="$(printf '%s' "$have" | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p')"
  [ -n "$minor" ] && [ "$minor" -ge 25 ] ||
    die "go: ${GO_MODULE}@${DF_GO_VERSION} needs Go >= 1.25, and \`go\` is ${have} (install a newer Go: https://go.dev/dl/)"
  local bin
  bin="$(go env GOBIN)"
  [ -n "$bin" ] || bin="$(go env GOPATH)/bin"
  mkdir -p "$bin"
  for cmd in scheduler manager; do
    if go_binary_ok "$bin/$cmd"; then
      say "go: $bin/$cmd is ${GO_MODULE}@${DF_GO_VERSION} already"
      continue
    fi
    local started=$SECONDS
    say "go: go install ${GO_MODULE}/cmd/${cmd}@${DF_GO_VERSION} (into $bin)"
    if GOBIN="$bin" go install "${GO_MODULE}/cmd/${cmd}@${DF_GO_VERSION}" >&2 && go_binary_ok "$bin/$cmd"; then
      say "go: $cmd installed in $((SECONDS - started)) s"
      continue
    fi
    # `go install pkg@version` also reads the module's version list (@v/list) to look for a deprecation notice; a
    # module proxy that answers only for named versions (403 on the list) fails it, although every file of the
    # version itself is there. A throwaway main module that requires the version builds the same package from the
    # same module files, checked against the same checksum database.
    local mod="${DF_UPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dragonfly-upstream}/go-${DF_GO_VERSION}"
    say "go: go install failed (above); building ${GO_MODULE}/cmd/${cmd}@${DF_GO_VERSION} in the module $mod instead"
    mkdir -p "$mod"
    printf 'module dragonfly-upstream-build\n\ngo 1.25\n\nrequire %s %s\n' "$GO_MODULE" "$DF_GO_VERSION" >"$mod/go.mod"
    (cd "$mod" && GOFLAGS=-mod=mod go build -o "$bin/$cmd" "${GO_MODULE}/cmd/${cmd}") >&2 ||
      die "go: building ${GO_MODULE}/cmd/${cmd}@${DF_GO_VERSION}"
    go_binary_ok "$bin/$cmd" || die "go: $bin/$cmd does not report ${GO_MODULE} ${DF_GO_VERSION}"
    say "go: $cmd built in $((SECONDS - started)) s"
  done
}

install_rust() {
  command -v cargo >/dev/null || die "rust: the \`cargo\` command is not on PATH (rustup's stable toolchain)"
  if cargo install --list 2>/dev/null | grep -q "^dragonfly-client v${DF_RUST_VERSION}:"; then
    say "rust: dragonfly-client v${DF_RUST_VERSION} already installed ($(dirname "$(command -v cargo)"))"
    return
  fi
  apt_install "${RUST_BUILD_PACKAGES[@]}"
  local started=$SECONDS jobs
  jobs="${CARGO_BUILD_JOBS:-$(nproc)}"
  say "rust: cargo install dragonfly-client --version ${DF_RUST_VERSION} --locked -j ${jobs} (a long build: RocksDB, AWS-LC)"
  cargo install dragonfly-client --version "${DF_RUST_VERSION}" --locked -j "$jobs" >&2 ||
    die "rust: cargo install dragonfly-client --version ${DF_RUST_VERSION}"
  say "rust: dragonfly-client installed in $((SECONDS - started)) s"
}

for s in "${steps[@]}"; do "install_$s"; done
say "done: ${steps[*]}"
