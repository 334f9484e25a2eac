#!/usr/bin/env bash
# Static analysis of the contracts with slither, gated by docs/security.md.
# Steps: create .venv-slither/ from requirements-slither.lock (skipped while
# the lock file is unchanged), write a solc standard-JSON input for
# contracts/**/*.sol, run slither on it, and let tools/slither_gate.py fail
# the run when a High or Medium finding has no justification row.
# Exit status: 0 passed, 1 unjustified High or Medium finding, 2 tool failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
SOLC_VERSION="0.8.28"
VENV="$ROOT/.venv-slither"
WORK="$ROOT/.toolchain/slither"
mkdir -p "$WORK"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'lint failed: %s\n' "$*" >&2; exit 2; }

# --- slither's virtual environment ------------------------------------------
# The stamp inside the venv records the lock file and interpreter it was built
# from. When either changes, the venv is rebuilt from scratch so that no
# package left from an older lock file stays installed.
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: install Python 3.11 or set PYTHON=/path/to/python3.11"
VENV_HASH="$( { cat requirements-slither.lock; "$PYTHON" --version; } | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/slither" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$VENV_HASH" ]]; then
  step "Installing slither into .venv-slither (requirements-slither.lock)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  # -qq prints errors only, without the warnings that a machine-wide pip
  # configuration can add for each package.
  "$VENV/bin/python" -m pip install -qq --disable-pip-version-check --no-deps -r requirements-slither.lock
  # --no-deps installs only what the lock lists, so check that it lists every requirement.
  "$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null \
    || fail "requirements-slither.lock misses a dependency: run $VENV/bin/python -m pip check"
  echo "$VENV_HASH" > "$VENV/.stamp"
fi

# --- npm packages: solc and OpenZeppelin ------------------------------------
if [[ ! -f node_modules/solc/package.json || ! -f node_modules/@openzeppelin/contracts/package.json ]]; then
  step "Installing npm packages (solc, OpenZeppelin)"
  command -v npm >/dev/null || fail "npm not found: install Node.js 20 and npm, or run make setup"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- solc -------------------------------------------------------------------
# slither runs `<solc> --version` and `<solc> --standard-json --allow-paths DIR`.
# A native solc of the right version on PATH is used as it is; otherwise a
# shim runs the npm package's WebAssembly build through tools/solc/solc-wrapper.js.
# The shim is written here rather than taken from ~/.solcx, so that lint
# does not depend on tools/setup.sh having run in this checkout.
if command -v solc >/dev/null && solc --version 2>/dev/null | grep -q "$SOLC_VERSION+commit"; then
  SOLC="$(command -v solc)"
else
  SOLC="$WORK/solc"
  printf '#!/bin/sh\nexec node %s "$@"\n' "$ROOT/tools/solc/solc-wrapper.js" > "$SOLC"
  chmod +x "$SOLC"
fi

# --- slither ----------------------------------------------------------------
# Path filtering is left to tools/slither_gate.py, which drops a finding only
# when its primary location is in node_modules/ or contracts/test/. slither's
# own --filter-paths drops a finding when any one of its elements matches,
# which would hide a finding in our code that mentions an OpenZeppelin function.
# --show-ignored-findings keeps findings that `slither-disable` comments or a
# slither.db.json triage file would hide, so docs/security.md is the only
# place where a finding can be accepted.
"$VENV/bin/python" tools/slither_gate.py input "$WORK/input.json" >/dev/null
REPORT="$WORK/report.json"
LOG="$WORK/slither.log"
rm -f "$REPORT"
step "Running slither $("$VENV/bin/slither" --version) on contracts/ (full text report: ${LOG#"$ROOT"/})"
if ! "$VENV/bin/slither" "$WORK/input.json" \
      --compile-force-framework solc-json --solc "$SOLC" \
      --show-ignored-findings --fail-none --json "$REPORT" >"$LOG" 2>&1; then
  tail -n 40 "$LOG" >&2
  fail "slither did not finish; its output is above and in $LOG"
fi

"$VENV/bin/python" tools/slither_gate.py check "$REPORT" --justifications docs/security.md
