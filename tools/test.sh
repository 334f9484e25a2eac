#!/usr/bin/env bash
# Runs the test suites: pure Python, contracts (under `ape test`), end to end,
# then static analysis. `tools/test.sh contracts` (or python, e2e, lint, fuzz)
# runs one suite. Each test suite writes JUnit XML under
# .toolchain/test-results; the last line sums them up.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/node_modules/.bin:$ROOT/.venv/bin:$PATH"
RESULTS="$ROOT/.toolchain/test-results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# A free loopback port for the anvil that `ape test` starts.
free_port() {
  python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

run_python() {
  python -m pytest -p no:ape_test tests/python -q --junitxml="$RESULTS/python.xml"
}

run_contracts() {
  APE_FOUNDRY_HOST="http://127.0.0.1:$(free_port)" ape test tests/contracts -q --junitxml="$RESULTS/contracts.xml"
}

run_fuzz() {
  APE_FOUNDRY_HOST="http://127.0.0.1:$(free_port)" ape test \
    tests/contracts/test_deal_state_machine.py tests/contracts/test_challenge_state_machine.py -q \
    --junitxml="$RESULTS/fuzz.xml"
}

# slither, gated on docs/security.md (see there); it writes no JUnit file.
run_lint() {
  bash tools/lint.sh
}

run_e2e() {
  python -m pytest -p no:ape_test tests/e2e -q --junitxml="$RESULTS/e2e.xml"
}

suites=("${@:-python contracts e2e lint}")
# shellcheck disable=SC2206
suites=(${suites[*]})
status=0
for suite in "${suites[@]}"; do
  printf '\n\033[1m==> %s tests\033[0m\n' "$suite"
  "run_$suite"
  code=$?
  if [[ $code -ne 0 ]]; then
    # pytest exits 5 when it collected no test, which is a failure here too.
    echo "$suite tests failed (exit code $code)"
    status=1
  fi
done

python tools/junit_total.py "$RESULTS"/*.xml
exit $status
