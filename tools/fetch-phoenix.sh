#!/usr/bin/env bash
# Install Arize Phoenix (the OpenInference trace UI and store) into a virtualenv of its own for
# the end-to-end tests against a real Phoenix server and for `llmtap demo --ui`:
#
#   arize-phoenix   the server (`phoenix serve`: OTLP in, UI, REST and GraphQL out)
#   playwright      the Python driver of the headless-browser test of Phoenix's UI; it runs
#                   the system's Chromium (/usr/bin/chromium), never a downloaded browser
#
# into ${LLMTAP_PHOENIX_DIR:-$HOME/.cache/llmtap/phoenix}/<version>/venv. Phoenix needs
# Python 3.11-3.14 and pins releases (anthropic < 2, wrapt < 3, ...) that clash with the SDKs
# llmtap's test environments install, so it never shares a virtualenv with llmtap.
# Idempotent: installed again only when the versions, the interpreter or this script change.
# When Chromium is missing and apt-get can run (as root), it is installed too.
#
#   tools/fetch-phoenix.sh            install what is missing or stale
#   tools/fetch-phoenix.sh --force    install again
#   tools/fetch-phoenix.sh --print    print the virtualenv's directory and exit
#
# Needs Python 3.11, 3.12 or 3.13 (PATH, then pyenv; $LLMTAP_PHOENIX_PYTHON to choose one)
# and access to PyPI.
set -euo pipefail

PHOENIX_VERSION=20.26.1
PLAYWRIGHT_VERSION=1.65.3
CHROMIUM=/usr/bin/chromium

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PHOENIX_DIR=${LLMTAP_PHOENIX_DIR:-$HOME/.cache/llmtap/phoenix}
VENV="$PHOENIX_DIR/$PHOENIX_VERSION/venv"
STAMP="$PHOENIX_DIR/$PHOENIX_VERSION/.stamp"

log() { echo "fetch-phoenix: $*"; }
die() {
  echo "fetch-phoenix: error: $*" >&2
  exit 1
}

FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  --print)
    echo "$VENV"
    exit 0
    ;;
  "") ;;
  *) die "unknown argument $1 (expected --force or --print)" ;;
esac

# python_of X.Y: an interpreter of that version (PATH, then pyenv), or nothing
python_of() {
  local found
  found=$(command -v "python$1" 2>/dev/null || true)
  if [ -z "$found" ] || ! "$found" -c '' 2>/dev/null; then
    found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python"$1" 2>/dev/null |
      sort -V | tail -1)
  fi
  echo "$found"
}

# the interpreter for Phoenix: $LLMTAP_PHOENIX_PYTHON, else the newest of 3.13, 3.12, 3.11
phoenix_python() {
  if [ -n "${LLMTAP_PHOENIX_PYTHON:-}" ]; then
    echo "$LLMTAP_PHOENIX_PYTHON"
    return
  fi
  local version found
  for version in 3.13 3.12 3.11; do
    found=$(python_of "$version")
    if [ -n "$found" ]; then
      echo "$found"
      return
    fi
  done
  die "Phoenix needs Python 3.11, 3.12 or 3.13 (none on PATH or in pyenv); set LLMTAP_PHOENIX_PYTHON"
}

# Chromium for the browser test, from apt when it is missing and apt can install it
install_chromium() {
  if [ -x "$CHROMIUM" ]; then
    return
  fi
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    log "note: $CHROMIUM is missing and apt-get cannot install it here (needs root);" \
      "the browser test of Phoenix's UI needs it (Debian: apt-get install chromium)"
    return
  fi
  log "installing Chromium with apt-get (for the browser test of Phoenix's UI)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
    >/dev/null; then
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null ||
      die "apt-get install chromium failed"
  fi
}

main() {
  install_chromium
  local python version key
  python=$(phoenix_python)
  version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') ||
    die "$python does not run"
  key="arize-phoenix $PHOENIX_VERSION playwright $PLAYWRIGHT_VERSION python $version"
  key="$key $(sha256sum "$0" | cut -c1-16)"
  if [[ $FORCE == 0 && -f $STAMP && -x $VENV/bin/phoenix && "$(cat "$STAMP")" == "$key" ]]; then
    log "Phoenix $PHOENIX_VERSION up to date in $VENV"
    return
  fi
  local start=$SECONDS
  log "installing arize-phoenix $PHOENIX_VERSION (Python $version) into $VENV"
  rm -rf "$VENV" "$STAMP"
  mkdir -p "$(dirname "$VENV")"
  "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # playwright's Python package only: its browsers are never downloaded (no `playwright install`)
  "$VENV/bin/python" -m pip install --quiet "arize-phoenix==$PHOENIX_VERSION" \
    "playwright==$PLAYWRIGHT_VERSION" || die "pip install arize-phoenix failed (output above)"
  [[ -x $VENV/bin/phoenix ]] || die "arize-phoenix $PHOENIX_VERSION installed no phoenix command"
  printf '%s' "$key" >"$STAMP"
  log "installed in $((SECONDS - start)) s ($(du -sh "$VENV" | cut -f1)) into $VENV"
}

cd "$ROOT"
main
