#!/usr/bin/env bash
# Redaction benchmark: llmtap vs Microsoft Presidio (see bench/REDACTION.md).
#
#   bench/run_redaction.sh            # install (first time), then the full run (~5 min on 2 cores)
#   bench/run_redaction.sh --quick    # wiring check (~1 min)
#
# Presidio, spaCy and Faker go into bench/.venv-redaction, never into the project's own
# environment. No spaCy model is downloaded: Presidio runs on spacy.blank("en").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
VENV="$HERE/.venv-redaction"
RESULTS="$HERE/results"
mkdir -p "$RESULTS"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[run_redaction] creating $VENV"
  "$PYTHON" -m venv "$VENV"
  printf '*\n' > "$VENV/.gitignore"
  "$VENV/bin/pip" install -q -U pip
fi
echo "[run_redaction] installing llmtap[redaction-fast], presidio-analyzer, presidio-anonymizer, faker into $VENV"
"$VENV/bin/pip" install -q -e "$REPO[redaction-fast]" presidio-analyzer presidio-anonymizer faker
"$VENV/bin/pip" list 2>/dev/null \
  | grep -iE '^(llmtap|presidio[-_]analyzer|presidio[-_]anonymizer|spacy|phonenumbers|faker|tldextract|hyperscan) ' \
  | tee "$RESULTS/install-redaction.txt"

"$VENV/bin/python" "$HERE/redaction.py" "$@" --out "$RESULTS"
echo "[run_redaction] results in $RESULTS/redaction.md"
