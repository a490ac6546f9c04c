#!/usr/bin/env bash
# Google GenAI and Bedrock overhead benchmark (bench/provider_overhead.py): llmtap beside the
# official OpenTelemetry, OpenInference and OpenLLMetry instrumentations of the same SDKs.
#
#   bench/run_providers.sh            # install (first time) into bench/.venv-providers, full run
#   bench/run_providers.sh --quick    # wiring check (figures not written)
#
# Never the project's own environment: the peers pin OpenTelemetry versions of their own.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv-providers"

PEERS=(
  opentelemetry-instrumentation-google-genai         # OpenTelemetry (pre-release only)
  opentelemetry-instrumentation-botocore             # OpenTelemetry, Bedrock extension
  openinference-instrumentation-google-genai         # Arize OpenInference
  openinference-instrumentation-bedrock
  opentelemetry-instrumentation-google-generativeai  # OpenLLMetry (Traceloop)
  opentelemetry-instrumentation-bedrock
)

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q -U pip
  "$VENV/bin/pip" install -q -e "$REPO" google-genai boto3
  "$VENV/bin/pip" install -q --pre "${PEERS[@]}"
  {
    echo "# bench/.venv-providers install log ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    "$VENV/bin/pip" check
    "$VENV/bin/pip" list 2>/dev/null | grep -iE "^(llmtap|google-genai|boto|opentelemetry|openinference)"
  } >"$HERE/results/install-providers.txt"
fi
exec "$VENV/bin/python" "$HERE/provider_overhead.py" "$@"
