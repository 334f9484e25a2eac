//! The `money` module's exports.
//!
//! In Wasm they are imports from the namespace `money`, which must be the
//! manifest name of an earlier module, so the runtime links them to that
//! module's exports. On native targets, for tests, they are plain calls
//! into the `money` crate.

/// Value that the money functions return for an invalid argument or an
/// overflow.
pub const INVALID: i64 = i64::MIN;

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "money")]
    extern "C" {
        pub fn line_total(unit_cents: i64, quantity: i64) -> i64;
        pub fn percent_of(amount_cents: i64, basis_points: i64) -> i64;
    }
}

/// Returns `unit_cents * quantity`, or `None` on overflow or a negative argument.
pub fn line_total(unit_cents: i64, quantity: i64) -> Option<i64> {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the import takes and returns plain integers.
    let result = unsafe { imports::line_total(unit_cents, quantity) };
    #[cfg(not(target_arch = "wasm32"))]
    let result = ::money::line_total(unit_cents, quantity);
    checked(result)
}

/// Returns `amount_cents * basis_points / 10_000` rounded half to even, or
/// `None` for an argument out of range.
pub fn percent_of(amount_cents: i64, basis_points: i64) -> Option<i64> {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the import takes and returns plain integers.
    let result = unsafe { imports::percent_of(amount_cents, basis_points) };
    #[cfg(not(target_arch = "wasm32"))]
    let result = ::money::percent_of(amount_cents, basis_points);
    checked(result)
}

fn checked(result: i64) -> Option<i64> {
    if result == INVALID {
        None
    } else {
        Some(result)
    }
}
