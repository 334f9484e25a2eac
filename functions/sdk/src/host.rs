//! The host namespace `cloudless`: logging and call parameters.
//!
//! On wasm32 these are imports that the Cloudless runtime defines:
//!
//! - `cloudless.log(level: i32, ptr: i32, len: i32)` records a UTF-8 message
//!   at a level from 0 (error) to 4 (trace);
//! - `cloudless.call_params(ptr: i32, len: i32) -> i32` writes the call
//!   parameters as JSON at `ptr` when `len` is large enough and returns the
//!   JSON's length in bytes.
//!
//! A module imports them only when it uses [`log`](crate::log) or
//! [`call_params`](crate::call_params), because the linker drops unused
//! imports. On other targets a thread-local test double replaces the
//! host (see [`testing`](crate::testing)), so handlers that log or read call
//! parameters still run in `cargo test`.

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "cloudless")]
    extern "C" {
        pub fn log(level: i32, ptr: i32, len: i32);
        pub fn call_params(ptr: i32, len: i32) -> i32;
    }
}

/// Sends one log record to the host.
#[cfg(target_arch = "wasm32")]
pub(crate) fn write_log(level: i32, message: &str) {
    // SAFETY: the host only reads `len` bytes at `ptr`, which `message`
    // borrows for the duration of the call.
    unsafe { imports::log(level, message.as_ptr() as usize as i32, message.len() as i32) }
}

/// Reads the call parameters JSON from the host: one call with length 0 to
/// learn the size, then one into a buffer of that size.
#[cfg(target_arch = "wasm32")]
pub(crate) fn read_call_params() -> Vec<u8> {
    // SAFETY: with length 0 the host writes nothing.
    let size = unsafe { imports::call_params(0, 0) };
    if size <= 0 {
        return Vec::new();
    }
    let mut buffer = vec![0_u8; size as usize];
    // SAFETY: `buffer` has `size` writable bytes, and the host writes at most
    // `len` bytes.
    let written = unsafe { imports::call_params(buffer.as_mut_ptr() as usize as i32, size) };
    // The parameters do not change during a call, so a different length
    // means a host bug. Keep what fits and let the JSON parser report it.
    buffer.truncate(written.max(0).min(size) as usize);
    buffer
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn write_log(level: i32, message: &str) {
    crate::testing::record_log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn read_call_params() -> Vec<u8> {
    crate::testing::call_params_json()
}
