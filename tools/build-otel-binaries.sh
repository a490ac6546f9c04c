#!/usr/bin/env bash
# Build the binaries the end-to-end tests and the deploy checks run, from their Go modules:
#
#   otelcol-llmtap    OpenTelemetry Collector distribution (collector-config/builder-config.yaml)
#   jaeger            Jaeger v2 (all-in-one with memory storage when run without --config)
#   promtool          Prometheus rule checker
#   otelcol-jsonfile  test-only Collector with the otlpjsonfile receiver, at an older release
#                     (collector-config/testing/jsonfile-builder.yaml says why)
#   tempo             Grafana Tempo single binary, when its source is at hand (see build_tempo)
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
# otlpjsonfilereceiver is not served by the module proxy at $OCB_VERSION; v0.158.0 is the
# newest release where it, the builder and the core modules all resolve
JSONFILE_OCB_VERSION=v0.158.0
JAEGER_VERSION=v1.76.0 # module github.com/jaegertracing/jaeger; the v2 binary is cmd/jaeger
PROMETHEUS_VERSION=v0.315.0 # module version of Prometheus 3.15.0
PROMETHEUS_RELEASE=3.15.0
# Tempo tags v2+ without a /v2 module path, so the Go module proxy serves no Tempo 2.x or 3.x
# (only v1.5.0, before TraceQL): it is built from its git tag, with the vendored dependencies
TEMPO_VERSION=${LLMTAP_TEMPO_VERSION:-v2.9.0} # the compose default (deploy/compose.yaml)
TEMPO_REPO=https://github.com/grafana/tempo.git

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MANIFEST="$ROOT/collector-config/builder-config.yaml"
JSONFILE_MANIFEST="$ROOT/collector-config/testing/jsonfile-builder.yaml"
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

# build_collector NAME MANIFEST OCB_VERSION: run the Collector Builder OCB_VERSION on MANIFEST,
# whose dist name and output_path are NAME
build_collector() {
  local name=$1 manifest=$2 version=$3
  local hash key builder="$WORK/ocb-$version/builder"
  hash=$(sha256sum "$manifest" | cut -c1-16)
  key="ocb $version manifest $hash $GO_KEY"
  if fresh "$name" "$key"; then
    log "$name up to date ($key)"
    return
  fi
  if [[ ! -x $builder ]]; then
    log "installing the Collector Builder $version"
    GOBIN="$(dirname "$builder")" go install "go.opentelemetry.io/collector/cmd/builder@$version"
  fi
  local dir="$WORK/$name"
  rm -rf "$dir" && mkdir -p "$dir"
  log "building $name from $manifest (minutes on a small machine)"
  # output_path in the manifest is relative: the sources and binary land in $dir
  (cd "$dir" && "$builder" --config "$manifest" --ldflags="-s -w")
  install -m 0755 "$dir/$name/$name" "$BIN_DIR/$name"
  stamp "$name" "$key"
  log "built $BIN_DIR/$name"
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

# tempo_source DIR: Tempo's source at $TEMPO_VERSION into DIR, from $LLMTAP_TEMPO_SRC (a git
# repository with the tag, or a source tree already at it), else a shallow clone of $TEMPO_REPO
tempo_source() {
  local dir=$1 src=${LLMTAP_TEMPO_SRC:-}
  rm -rf "$dir" && mkdir -p "$dir"
  if [[ -n $src ]] && git -C "$src" rev-parse -q --verify "refs/tags/$TEMPO_VERSION" >/dev/null 2>&1; then
    git -C "$src" archive "$TEMPO_VERSION" | tar -x -C "$dir"
  elif [[ -n $src && -f $src/go.mod && -d $src/cmd/tempo && -d $src/vendor ]]; then
    cp -R "$src/." "$dir"
  elif [[ -n $src ]]; then
    log "LLMTAP_TEMPO_SRC=$src is neither a git repository with tag $TEMPO_VERSION nor Tempo's source"
    return 1
  else
    git clone -q --depth 1 --branch "$TEMPO_VERSION" "$TEMPO_REPO" "$dir"
  fi
}

# build_tempo: Tempo's single binary from its source at $TEMPO_VERSION (tempo_source), offline
# with its vendor/ tree. Without the source (no LLMTAP_TEMPO_SRC and no access to GitHub) it
# warns and goes on: the Tempo end-to-end test then says how to build it.
build_tempo() {
  local key="github.com/grafana/tempo $TEMPO_VERSION cmd/tempo vendor $GO_KEY"
  if fresh tempo "$key"; then
    log "tempo up to date ($key)"
    return
  fi
  local dir="$WORK/tempo-$TEMPO_VERSION"
  log "getting Tempo $TEMPO_VERSION's source"
  if ! tempo_source "$dir"; then
    log "warning: tempo not built: no source for $TEMPO_VERSION (set LLMTAP_TEMPO_SRC to a" \
      "clone of $TEMPO_REPO, or allow git access to GitHub)"
    return
  fi
  log "building tempo from $dir/cmd/tempo (minutes on a small machine)"
  (cd "$dir" && GOWORK=off GOFLAGS= GOPROXY=off go build -mod=vendor -buildvcs=false -trimpath \
    -ldflags="-s -w -X main.Version=${TEMPO_VERSION#v}" -o "$BIN_DIR/tempo" ./cmd/tempo)
  stamp tempo "$key"
  log "built $BIN_DIR/tempo"
}

main() {
  check_go
  mkdir -p "$BIN_DIR" "$STAMPS" "$WORK"
  log "binaries in $BIN_DIR ($GO_KEY)"
  build_collector otelcol-llmtap "$MANIFEST" "$OCB_VERSION"
  build_in_module jaeger github.com/jaegertracing/jaeger "$JAEGER_VERSION" cmd/jaeger \
    "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION"
  build_in_module promtool github.com/prometheus/prometheus "$PROMETHEUS_VERSION" cmd/promtool \
    "-X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE"
  build_collector otelcol-jsonfile "$JSONFILE_MANIFEST" "$JSONFILE_OCB_VERSION"
  build_tempo
  log "done: $BIN_DIR/otelcol-llmtap $BIN_DIR/jaeger $BIN_DIR/promtool $BIN_DIR/otelcol-jsonfile"
}

main
