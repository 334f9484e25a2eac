#!/usr/bin/env bash
# Builds every example function for wasm32-wasi and copies the modules to
# functions/dist/<example>.wasm.
#
# Uses rustup's toolchain where it has the wasm32-wasip1 target, otherwise
# Debian's, and the crate sources under /usr/share/cargo/registry either way,
# without network access (see .cargo/config.toml). CLOUDLESS_CARGO and
# CLOUDLESS_RUSTC override the toolchain paths (and select the Debian target).
set -euo pipefail

readonly DEBIAN_PACKAGES="rustc cargo libstd-rust-dev-wasm32 librust-serde-json-dev librust-serde-derive-dev"
readonly REGISTRY="/usr/share/cargo/registry"

# rustup's toolchain when it has the wasm32-wasip1 target (wasip1 is the new
# name of wasm32-wasi), otherwise Debian's.
# NOTE: the rustup branch has not run on the project's machines, where rustup
# cannot download targets; only the Debian branch is exercised by CI.
if [[ -z "${CLOUDLESS_CARGO:-}" ]] && command -v rustup >/dev/null \
    && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    TARGET="wasm32-wasip1"
    cargo_bin="$(rustup which cargo)"
    rustc_bin="$(rustup which rustc)"
else
    TARGET="wasm32-wasi"
    cargo_bin="${CLOUDLESS_CARGO:-/usr/bin/cargo}"
    rustc_bin="${CLOUDLESS_RUSTC:-/usr/bin/rustc}"
fi
readonly TARGET
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fail() {
    echo "build.sh: $1" >&2
    echo "build.sh: install the Debian packages: $DEBIAN_PACKAGES" >&2
    exit 1
}

# Check each piece of the toolchain, so that a missing one is named.
[[ -x "$cargo_bin" ]] || fail "cargo not found at $cargo_bin"
[[ -x "$rustc_bin" ]] || fail "rustc not found at $rustc_bin"

sysroot="$("$rustc_bin" --print sysroot)" || fail "$rustc_bin --print sysroot failed"
if ! compgen -G "$sysroot/lib/rustlib/$TARGET/lib/libstd-*.rlib" >/dev/null; then
    fail "$TARGET standard library not found in $sysroot/lib/rustlib/$TARGET"
fi

for crate in serde serde_derive serde_json; do
    if ! compgen -G "$REGISTRY/$crate-1.*" >/dev/null; then
        fail "crate $crate not found in $REGISTRY"
    fi
done

# Cargo reads .cargo/config.toml from the working directory, so build from
# here.
cd "$root"
RUSTC="$rustc_bin" "$cargo_bin" build --release --target "$TARGET" --workspace --offline

target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$root/dist"

# Each example's library is named after its folder (with "-" as "_").
for manifest in "$root"/examples/*/Cargo.toml; do
    example="$(basename "$(dirname "$manifest")")"
    module="$target_dir/$TARGET/release/${example//-/_}.wasm"
    destination="$root/dist/$example.wasm"

    [[ -f "$module" ]] || { echo "build.sh: module not found: $module" >&2; exit 1; }
    if ! cmp -s "$module" "$destination"; then
        cp "$module" "$destination"
    fi
    printf '%-12s %8d bytes  %s\n' "$example" "$(wc -c <"$destination")" "dist/$example.wasm"
done
