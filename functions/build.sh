#!/usr/bin/env bash
# Builds every example function for wasm32-wasi, copies the modules to
# functions/dist/<module>.wasm and packs each example into
# functions/dist/<example>.cloudless.tar.
#
# Each example's manifest.json lists its modules in link order. Module NAME
# is the cdylib crate NAME of the workspace (functions/examples/<example> or
# functions/examples/<example>/modules/<module>). The packages are written
# with the project's Python (.venv/bin/python, or CLOUDLESS_PYTHON) when it
# can import cloudless, and skipped with a note otherwise.
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

# Prints the module names of a manifest template, one per line.
manifest_modules() {
    sed -n 's/.*"modules": *\[\(.*\)\].*/\1/p' "$1" | grep -o '"name": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

# Examples whose package is missing or older than its manifest or a module.
stale_examples=()
for manifest in "$root"/examples/*/manifest.json; do
    example="$(basename "$(dirname "$manifest")")"
    package="$root/dist/$example.cloudless.tar"
    modules="$(manifest_modules "$manifest")"
    [[ -n "$modules" ]] || { echo "build.sh: no modules found in $manifest (write \"modules\": [...] on one line)" >&2; exit 1; }
    for name in $modules; do
        # Cargo names crate NAME's library NAME.wasm with "-" written as "_".
        module="$target_dir/$TARGET/release/${name//-/_}.wasm"
        destination="$root/dist/$name.wasm"
        [[ -f "$module" ]] || { echo "build.sh: module $name of $example not found: $module" >&2; exit 1; }
        if ! cmp -s "$module" "$destination"; then
            cp "$module" "$destination"
        fi
        printf '%-10s %-10s %8d bytes  %s\n' "$example" "$name" "$(wc -c <"$destination")" "dist/$name.wasm"
        if [[ ! -f "$package" || "$destination" -nt "$package" || "$manifest" -nt "$package" ]]; then
            stale="$example"
        fi
    done
    if [[ "${stale:-}" == "$example" ]]; then
        stale_examples+=("$root/examples/$example")
    fi
done

# NOTE: a package is rebuilt only when its manifest or a module is newer, so
# after a change of the Python packager delete dist/*.cloudless.tar.
if [[ ${#stale_examples[@]} -eq 0 ]]; then
    exit 0
fi

python_bin="${CLOUDLESS_PYTHON:-$root/../.venv/bin/python}"
if [[ -x "$python_bin" ]] && "$python_bin" -c "import cloudless.cli" 2>/dev/null; then
    "$python_bin" -m cloudless package build "${stale_examples[@]}" --wasm-dir "$root/dist" --out-dir "$root/dist"
    # The packer leaves a package with unchanged bytes alone, so mark it as
    # up to date here.
    for example_dir in "${stale_examples[@]}"; do
        touch "$root/dist/$(basename "$example_dir").cloudless.tar"
    done
else
    echo "build.sh: skipped the packages: $python_bin cannot import cloudless (run tools/setup.sh, or set CLOUDLESS_PYTHON)" >&2
fi
