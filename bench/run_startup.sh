#!/usr/bin/env bash
# Start-up benchmark: set-up + first OpenAI call in a fresh process, llmtap vs the SDK alone vs
# the peers (see bench/README.md, "Start-up").
#
#   bench/run_startup.sh                    # install what is missing, then 15 rounds (~15 min)
#   bench/run_startup.sh --runs 5 --rows sdk,llmtap
#
# The venvs are the ones bench/run.sh makes (bench/.venv with the peers, bench/.venv-httpx for
# opentelemetry-instrumentation-openai-v2), made here the same way when they are missing, plus
# bench/.venv-openlit: OpenLIT requires openai < 3 and anthropic < 1 (llmtap: openai 3.x,
# anthropic 2.x), so it gets a venv, and an SDK-alone baseline, of its own. Never the
# project's own environment.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
RESULTS="$HERE/results"
mkdir -p "$RESULTS"

PEERS=(
  opentelemetry-instrumentation-openai         # OpenLLMetry (Traceloop)
  opentelemetry-instrumentation-genai-openai   # OpenTelemetry (opentelemetry-python-genai)
  openinference-instrumentation-openai         # Arize OpenInference
)

make_venv() {  # make_venv DIR -> 0 when it had to be created
  if [[ -x "$1/bin/python" ]]; then
    return 1
  fi
  echo "[run_startup] creating $1"
  "$PYTHON" -m venv "$1"
  "$1/bin/pip" install -q -U pip
}

log="$RESULTS/install-startup.txt"
{
  echo "# bench venvs for startup.py ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  if make_venv "$HERE/.venv"; then
    "$HERE/.venv/bin/pip" install -q -e "$REPO[dev]" pyinstrument 2>&1
    "$HERE/.venv/bin/pip" install -q -U "${PEERS[@]}" opentelemetry-instrumentation-openai-v2 2>&1
  fi
  if make_venv "$HERE/.venv-httpx"; then
    # openai-v2 needs the legacy httpx and opentelemetry-util-genai 0.x (see bench/README.md);
    # left to itself pip may settle on openai-v2 2.3b0, which does not run with wrapt 2
    "$HERE/.venv-httpx/bin/pip" install -q -e "$REPO[dev]" \
      "opentelemetry-instrumentation-openai-v2==2.4b0" "opentelemetry-util-genai<1" \
      "httpx==0.28.1" 2>&1
  fi
  if make_venv "$HERE/.venv-openlit"; then
    "$HERE/.venv-openlit/bin/pip" install -q openlit 2>&1
  fi
  for venv in .venv .venv-httpx .venv-openlit; do
    echo "## bench/$venv: pip check"
    "$HERE/$venv/bin/pip" check 2>&1 || true
    "$HERE/$venv/bin/pip" list 2>/dev/null \
      | grep -iE '^(llmtap|openai|anthropic|httpx2?|wrapt|openlit|opentelemetry-(sdk|instrumentation|instrumentation-openai[a-z0-9-]*|instrumentation-genai-openai|util-genai)|openinference-instrumentation-openai) ' \
      || true
  done
} 2>&1 | grep -vE 'BuildBackendWarning|corresp\(|^ *!!|^ *\*+$|^ *$|license|SPDX|2027-Feb|packaging.python.org' \
  | tee "$log"

"$HERE/.venv/bin/python" "$HERE/startup.py" --importtime "$@"
echo "[run_startup] results in $RESULTS/startup.md"
