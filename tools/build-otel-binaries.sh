#!/usr/bin/env bash
# Build the binaries the end-to-end tests and the deploy checks run, from their Go modules:
#
#   otelcol-llmtap  OpenTelemetry Collector distribution (collector-config/builder-config.yaml)
#   jaeger          Jaeger v2 (all-in-one with memory storage when run without --config)
#   promtool        Prometheus rule checker
#
# into ${LLMTAP_BIN_DIR:-$HOME/.cache/llmtap/bin}. Idempotent: each binary is rebuilt only
# when its cache key (versions, manifest hash, Go version, platform) changes.
#
#   tools/build-otel-binaries.sh            build what is missing or stale
#   tools/build-otel-binaries.sh --force    rebuild everything
#   tools/build-otel-binaries.sh --print    print the binary directory and exit
#
# Needs Go >= 1.26 and access to the Go module proxy (or a filled module cache).
set -euo pipefail

OCB_VERSION=v0.161.0
JAEGER_VERSION=v1.76.0 # module github.com/jaegertracing/jaeger; the v2 binary is cmd/jaeger
PROMETHEUS_VERSION=v0.315.0 # module version of Prometheus 3.15.0
PROMETHEUS_RELEASE=3.15.0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MANIFEST="$ROOT/collector-config/builder-config.yaml"
BIN_DIR=${LLMTAP_BIN_DIR:-$HOME/.cache/llmtap/bin}
STAMPS="$BIN_DIR/.stamps"
WORK="$BIN_DIR/.build"
FORCE=0

log() { echo "build-otel-binaries: $*"; }
die() {
  echo "build-otel-binaries: error: $*" >&2
  exit 1
}

case "${1:-}" in
  --force) FORCE=1 ;;
  --print)
    echo "$BIN_DIR"
    exit 0
    ;;
  "") ;;
  *) die "unknown argument $1 (expected --force or --print)" ;;
esac

check_go() {
  command -v go >/dev/null || die "go not found on PATH; install Go >= 1.26 (https://go.dev/dl/)"
  local version
  version=$(go env GOVERSION)
  local minor=${version#go1.}
  minor=${minor%%.*}
  [[ $minor =~ ^[0-9]+$ && $minor -ge 26 ]] || die "Go >= 1.26 needed, found $version"
  GO_KEY="$version $(go env GOOS)/$(go env GOARCH)"
}

# fresh NAME KEY: true when BIN_DIR/NAME exists and was built with KEY
fresh() {
  [[ $FORCE == 0 && -x "$BIN_DIR/$1" && -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]
}

stamp() { printf '%s' "$2" >"$STAMPS/$1"; }

build_collector() {
  local hash key builder="$WORK/ocb-$OCB_VERSION/builder"
  hash=$(sha256sum "$MANIFEST" | cut -c1-16)
  key="ocb $OCB_VERSION manifest $hash $GO_KEY"
  if fresh otelcol-llmtap "$key"; then
    log "otelcol-llmtap up to date ($key)"
    return
  fi
  if [[ ! -x $builder ]]; then
    log "installing the Collector Builder $OCB_VERSION"
    GOBIN="$(dirname "$builder")" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
  fi
  local dir="$WORK/otelcol-llmtap"
  rm -rf "$dir" && mkdir -p "$dir"
  log "building otelcol-llmtap from $MANIFEST (minutes on a small machine)"
  # output_path in the manifest is relative: the sources and binary land in $dir
  (cd "$dir" && "$builder" --config "$MANIFEST" --ldflags="-s -w")
  install -m 0755 "$dir/otelcol-llmtap/otelcol-llmtap" "$BIN_DIR/otelcol-llmtap"
  stamp otelcol-llmtap "$key"
  log "built $BIN_DIR/otelcol-llmtap"
}

# build_in_module NAME MODULE VERSION PACKAGE [LDFLAGS]: `go install MODULE/PACKAGE@VERSION`
# is refused for modules whose go.mod has replace directives (Jaeger, Prometheus), so build
# inside the downloaded module, which then is the main module with its own replaces and go.sum.
build_in_module() {
  local name=$1 module=$2 version=$3 package=$4 ldflags="-s -w ${5:-}"
  local key="$module $version $package ${5:-} $GO_KEY"
  if fresh "$name" "$key"; then
    log "$name up to date ($key)"
    return
  fi
  log "downloading $module@$version"
  local src
  src=$(go mod download -json "$module@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $src ]] || die "go mod download gave no source directory for $module@$version"
  log "building $name from $src/$package (minutes on a small machine)"
  (cd "$src" && GOWORK=off go build -mod=readonly -buildvcs=false -trimpath -ldflags="$ldflags" \
    -o "$BIN_DIR/$name" "./$package")
  stamp "$name" "$key"
  log "built $BIN_DIR/$name"
}

main() {
  check_go
  mkdir -p "$BIN_DIR" "$STAMPS" "$WORK"
  log "binaries in $BIN_DIR ($GO_KEY)"
  build_collector
  build_in_module jaeger github.com/jaegertracing/jaeger "$JAEGER_VERSION" cmd/jaeger \
    "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION"
  build_in_module promtool github.com/prometheus/prometheus "$PROMETHEUS_VERSION" cmd/promtool \
    "-X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE"
  log "done: $BIN_DIR/otelcol-llmtap $BIN_DIR/jaeger $BIN_DIR/promtool"
}

main
