#!/usr/bin/env bash
# Idempotent set-up for a fresh clone: Python virtual environment, npm
# packages (solc, anvil, OpenZeppelin), the solc command for Ape, the Rust
# toolchain for wasm32-wasi, compiled contracts and the example functions.
# Each step records a stamp under .toolchain/ and is skipped when its inputs
# did not change, so a second run takes a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAMPS="$ROOT/.toolchain"
PYTHON="${PYTHON:-python3.11}"
SOLC_VERSION="0.8.28"
mkdir -p "$STAMPS"
cd "$ROOT"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'setup failed: %s\n' "$*" >&2; exit 1; }

# Prints a hash of the given files, so a step reruns when one of them changes.
inputs_hash() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }

# --- Rust toolchain for wasm32-wasi ------------------------------------------
# rustup's wasm32-wasip1 target is used where rustup can install it. Where it
# cannot download (no access to its servers), Debian's rustc 1.63 with its
# wasm32-wasi standard library is used. Either way the serde crates come from
# Debian's crate sources, because crates.io may be out of reach.
# functions/build.sh picks the same toolchain by the same test.
rustup_wasm_ok() {
  command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1
}
debian_rust_ok() {
  [[ -x /usr/bin/cargo && -x /usr/bin/rustc && -d /usr/lib/rustlib/wasm32-wasi ]]
}
serde_sources_ok() {
  [[ -d /usr/share/cargo/registry ]] && ls /usr/share/cargo/registry | grep -q '^serde_json-' \
    && ls /usr/share/cargo/registry | grep -q '^serde_derive-'
}
apt_install() {
  command -v apt-get >/dev/null || fail "apt-get not found; install the Debian packages $* by hand"
  step "Installing Debian packages: $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
if ! rustup_wasm_ok && ! debian_rust_ok; then
  if command -v rustup >/dev/null && rustup target add wasm32-wasip1 >/dev/null 2>&1; then
    step "Installed rustup's wasm32-wasip1 target"
  else
    apt_install rustc cargo libstd-rust-dev-wasm32 librust-serde-json-dev librust-serde-derive-dev
    debian_rust_ok || fail "Debian's Rust packages installed, but /usr/lib/rustlib/wasm32-wasi is still missing"
  fi
fi
if ! serde_sources_ok; then
  apt_install librust-serde-json-dev librust-serde-derive-dev
  serde_sources_ok || fail "the serde crate sources are still missing from /usr/share/cargo/registry"
fi

# --- Python virtual environment -----------------------------------------------
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: install Python 3.11 or set PYTHON=/path/to/python3.11"
PY_HASH="$(inputs_hash requirements.lock pyproject.toml)"
if ! stamp_ok python "$PY_HASH" || [[ ! -x .venv/bin/python ]]; then
  step "Installing Python packages into .venv"
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$PY_HASH" > "$STAMPS/python"
fi

# --- npm packages -----------------------------------------------------------
NPM_HASH="$(inputs_hash package.json package-lock.json)"
if ! stamp_ok npm "$NPM_HASH" || [[ ! -x node_modules/.bin/anvil ]]; then
  step "Installing npm packages (solc, anvil, OpenZeppelin)"
  command -v npm >/dev/null || fail "npm not found: install Node.js 20 and npm"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$NPM_HASH" > "$STAMPS/npm"
fi

# --- solc for ape-solidity --------------------------------------------------
# ape-solidity only runs binaries named ~/.solcx/solc-v<version>. A native
# solc of the right version on PATH is linked there; otherwise a shim runs the
# npm package's WebAssembly build through tools/solc/solc-wrapper.js.
SOLC_TARGET="$HOME/.solcx/solc-v$SOLC_VERSION"
mkdir -p "$HOME/.solcx"
if command -v solc >/dev/null && solc --version 2>/dev/null | grep -q "$SOLC_VERSION+commit"; then
  [[ "$(readlink -f "$SOLC_TARGET" 2>/dev/null)" == "$(readlink -f "$(command -v solc)")" ]] \
    || ln -sf "$(command -v solc)" "$SOLC_TARGET"
else
  # Several clones share this one file, so the shim prefers the wrapper of the
  # project it is run from (ape and slither run solc from the project root)
  # and falls back to this clone's.
  SHIM="$(printf '#!/bin/sh\nfor root in "$PWD" %s; do\n  [ -f "$root/tools/solc/solc-wrapper.js" ] && exec node "$root/tools/solc/solc-wrapper.js" "$@"\ndone\necho "solc shim: tools/solc/solc-wrapper.js not found; run make setup in a Cloudless clone" >&2\nexit 1\n' "'$ROOT'")"
  if [[ ! -x "$SOLC_TARGET" || "$(cat "$SOLC_TARGET")" != "$SHIM" ]]; then
    step "Installing the solc $SOLC_VERSION shim at $SOLC_TARGET"
    printf '%s\n' "$SHIM" > "$SOLC_TARGET"
    chmod +x "$SOLC_TARGET"
  fi
fi

export PATH="$ROOT/node_modules/.bin:$ROOT/.venv/bin:$PATH"

# --- contracts --------------------------------------------------------------
SOL_HASH="$(find contracts -name '*.sol' -not -path '*/.cache/*' | sort | xargs cat | cat - ape-config.yaml | sha256sum | cut -d' ' -f1)"
if ! stamp_ok contracts "$SOL_HASH" || [[ ! -f .build/__local__.json ]]; then
  step "Compiling contracts"
  # --force: ape does not notice changes in imported libraries, only in the
  # files that changed themselves.
  ape compile --force >/dev/null
  echo "$SOL_HASH" > "$STAMPS/contracts"
fi

# --- example functions ------------------------------------------------------
FN_HASH="$(find functions -path functions/target -prune -o -path functions/dist -prune -o -type f -print | sort | xargs cat | sha256sum | cut -d' ' -f1)"
if ! stamp_ok functions "$FN_HASH" || ! ls functions/dist/*.wasm >/dev/null 2>&1; then
  step "Building the example functions for wasm32-wasi"
  bash functions/build.sh
  echo "$FN_HASH" > "$STAMPS/functions"
fi

step "Set-up complete"
