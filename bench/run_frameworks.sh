#!/usr/bin/env bash
# LangGraph agent overhead benchmark (bench/framework_overhead.py): llmtap's LangChain + OpenAI
# instrumentation beside OpenLLMetry's and OpenInference's LangChain + OpenAI instrumentations,
# on one LangGraph agent run with two tool calls.
#
#   bench/run_frameworks.sh            # install (first time) into bench/.venv-frameworks, full run
#   bench/run_frameworks.sh --quick    # wiring check (figures not written)
#   bench/run_frameworks.sh --commit HEAD ...  # llmtap as committed (git archive), not the work tree
#
# Never the project's own environment: the peers pin OpenTelemetry versions of their own.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv-frameworks"

FRAMEWORK=(
  "langchain-core==1.8.3"
  "langgraph==1.2.24"
  "langchain-openai==1.8.1"
  "openai>=3,<4"
)
PEERS=(
  opentelemetry-instrumentation-langchain    # OpenLLMetry (Traceloop)
  opentelemetry-instrumentation-openai
  openinference-instrumentation-langchain    # Arize OpenInference
  openinference-instrumentation-openai
)

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip
  "$VENV/bin/pip" install -q -e "$REPO" "${FRAMEWORK[@]}"
  "$VENV/bin/pip" install -q "${PEERS[@]}" "${FRAMEWORK[@]}"
  {
    echo "# bench/.venv-frameworks install log ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    "$VENV/bin/pip" check
    "$VENV/bin/pip" list 2>/dev/null |
      grep -iE "^(llmtap|langchain|langgraph|openai|httpx|opentelemetry|openinference)"
  } >"$HERE/results/install-frameworks.txt"
fi
if [[ "${1:-}" == "--commit" ]]; then
  SRC="$(mktemp -d)"
  trap 'rm -rf "$SRC"' EXIT
  REV="$(git -C "$REPO" rev-parse --short "$2")"
  git -C "$REPO" archive "$REV" src/llmtap | tar -x -C "$SRC"
  export PYTHONPATH="$SRC/src" LLMTAP_BENCH_SOURCE="commit $REV (git archive, not the work tree)"
  shift 2
  "$VENV/bin/python" "$HERE/framework_overhead.py" "$@"
  exit
fi
exec "$VENV/bin/python" "$HERE/framework_overhead.py" "$@"
