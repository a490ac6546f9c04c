#!/usr/bin/env bash
# Instrumentation-overhead benchmark and memory soak for llmtap (see bench/README.md).
#
#   bench/run.sh            # install (first time), then the full runs (~55 min on 2 cores)
#   bench/run.sh --quick    # wiring check (~3 min)
#
# Everything is installed into bench/.venv (and bench/.venv-httpx for the one peer that needs
# the legacy httpx package), never into the project's own environment: the peers pin
# OpenTelemetry versions of their own.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
RESULTS="$HERE/results"
QUICK=""
if [[ "${1:-}" == "--quick" ]]; then
  QUICK="--quick"
  RESULTS="$HERE/results-quick"  # a wiring check must not overwrite the real figures
fi
mkdir -p "$RESULTS"

PEERS=(
  opentelemetry-instrumentation-openai         # OpenLLMetry (Traceloop)
  opentelemetry-instrumentation-openai-v2      # OpenTelemetry contrib, "v2"
  opentelemetry-instrumentation-genai-openai   # its successor (opentelemetry-python-genai)
  openinference-instrumentation-openai         # Arize OpenInference
)

make_venv() {  # make_venv DIR
  if [[ ! -x "$1/bin/python" ]]; then
    echo "[run] creating $1"
    "$PYTHON" -m venv "$1"
    "$1/bin/pip" install -q -U pip
  fi
}

install_main() {
  local venv="$HERE/.venv" log="$RESULTS/install.txt"
  make_venv "$venv"
  echo "[run] installing llmtap[dev] from $REPO into $venv"
  "$venv/bin/pip" install -q -e "$REPO[dev]" pyinstrument
  # Peers in a second step, all at once so pip resolves them together against llmtap's pins;
  # if that is impossible, one by one so a peer that cannot install does not block the others.
  {
    echo "# bench/.venv install log ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    if "$venv/bin/pip" install -q -U "${PEERS[@]}" 2>&1; then
      echo "all peers installed together"
    else
      echo "peers could not be installed together; trying one by one"
      for peer in "${PEERS[@]}"; do
        "$venv/bin/pip" install -q -U "$peer" 2>&1 || echo "FAILED: $peer"
      done
    fi
    echo "## pip check"
    "$venv/bin/pip" check 2>&1 || true
    echo "## versions"
    "$venv/bin/pip" list 2>/dev/null \
      | grep -iE '^(llmtap|openai|httpx2?|wrapt|pydantic|pyinstrument|opentelemetry-[a-z0-9-]+|openinference-[a-z0-9-]+) ' || true
  } | tee "$log"
}

install_httpx_venv() {
  # opentelemetry-instrumentation-openai-v2 cannot run in bench/.venv:
  # - it imports the legacy `httpx` package, which openai 3.x no longer depends on (it uses
  #   httpx2); installing httpx next to the other peers would change their behaviour
  #   (opentelemetry-instrumentation-genai-openai prefers `httpx` when it is importable);
  # - its 2.4b0 release imports opentelemetry.util.genai.instruments, which
  #   opentelemetry-util-genai 1.x (required by opentelemetry-instrumentation-genai-openai)
  #   no longer has, so it needs opentelemetry-util-genai 0.x.
  local venv="$HERE/.venv-httpx"
  make_venv "$venv"
  echo "[run] installing llmtap[dev] + opentelemetry-instrumentation-openai-v2 + httpx into $venv"
  {
    "$venv/bin/pip" install -q -e "$REPO[dev]" opentelemetry-instrumentation-openai-v2 \
      "opentelemetry-util-genai<1" httpx pyinstrument 2>&1
    "$venv/bin/pip" check 2>&1 || true
    "$venv/bin/pip" list 2>/dev/null \
      | grep -iE '^(httpx2?|openai|opentelemetry-instrumentation-openai-v2|opentelemetry-util-genai|opentelemetry-sdk) ' || true
  } | tee "$RESULTS/install-httpx.txt"
}

install_main
install_httpx_venv || echo "[run] could not build bench/.venv-httpx; the v2 side run is skipped"

echo "[run] instrumentation overhead (main venv: llmtap, floor and every peer that imports)"
"$HERE/.venv/bin/python" "$HERE/instrumentation_overhead.py" $QUICK --out "$RESULTS"

if [[ -x "$HERE/.venv-httpx/bin/python" ]]; then
  echo "[run] instrumentation overhead, side run in bench/.venv-httpx (openai-v2 with httpx installed)"
  if [[ -n "$QUICK" ]]; then SIDE=(--quick); else SIDE=(--calls 1500 --stream-calls 150); fi
  "$HERE/.venv-httpx/bin/python" "$HERE/instrumentation_overhead.py" "${SIDE[@]}" \
    --rows floor,llmtap,otel_v2 --name instrumentation_overhead_httpx_venv --out "$RESULTS" \
    || echo "[run] side run failed (see above)"
fi

echo "[run] memory soak (llmtap and no instrumentation, side by side)"
if [[ -n "$QUICK" ]]; then
  "$HERE/.venv/bin/python" "$HERE/memory_soak.py" --calls 12000 --warmup 2000 --sample-every 2000 \
    --flat-from 4000 --out "$RESULTS"
  "$HERE/.venv/bin/python" "$HERE/memory_soak.py" --tracemalloc --calls 4000 --warmup 1000 \
    --sample-every 1000 --flat-from 2000 --out "$RESULTS"
else
  # 100,000 calls sampled by RSS / gc objects / allocated blocks (~6 min) ...
  "$HERE/.venv/bin/python" "$HERE/memory_soak.py" --out "$RESULTS"
  # ... and a shorter one under tracemalloc, which slows these calls down ~4x (~4 min)
  "$HERE/.venv/bin/python" "$HERE/memory_soak.py" --tracemalloc --calls 15000 --warmup 5000 \
    --sample-every 2000 --flat-from 7000 --out "$RESULTS"
fi

echo "[run] results in $RESULTS"
