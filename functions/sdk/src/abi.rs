//! Guest ABI v1: the allocator exports and the pointer handling of calls.
//!
//! The host writes a call's input into a buffer from `cloudless_alloc` and
//! passes `(ptr, len)` to the function export, which takes ownership of the
//! buffer. The export returns `(out_ptr << 32) | out_len` as an i64. The
//! output buffer also comes from the allocator below, so the host may release
//! it with `cloudless_free(out_ptr, out_len)`.

use std::alloc::{self, Layout};

/// Version of the guest ABI that `cloudless_abi_version` returns.
pub const ABI_VERSION: i32 = 1;

/// Layout of a buffer of `len` bytes. Zero-length requests get one byte, so
/// that every buffer, even an empty one, has a real address that
/// `cloudless_free` can release with the same layout.
fn buffer_layout(len: usize) -> Option<Layout> {
    Layout::from_size_align(len.max(1), 1).ok()
}

/// Allocates a buffer for `len` bytes and returns null when the allocator
/// fails (for example because the host rejected a memory growth).
pub fn allocate(len: usize) -> *mut u8 {
    match buffer_layout(len) {
        // SAFETY: the layout has a non-zero size.
        Some(layout) => unsafe { alloc::alloc(layout) },
        None => std::ptr::null_mut(),
    }
}

/// Releases a buffer from [`allocate`]. A null `ptr` is a no-op.
///
/// # Safety
/// `ptr` must come from `allocate(len)` with the same `len` and must not have
/// been released before.
pub unsafe fn deallocate(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    if let Some(layout) = buffer_layout(len) {
        alloc::dealloc(ptr, layout);
    }
}

/// Packs an output buffer into the i64 that a function export returns: the
/// pointer in the high 32 bits and the length in the low 32 bits.
pub fn pack_output(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// Copies `bytes` into a buffer from [`allocate`] and returns it packed for
/// the host. Traps if the allocation fails, because the host then has no way
/// to receive an envelope.
#[cfg(target_arch = "wasm32")]
pub fn into_host_buffer(bytes: &[u8]) -> i64 {
    let ptr = allocate(bytes.len());
    if ptr.is_null() {
        alloc::handle_alloc_error(buffer_layout(bytes.len()).expect("output fits in memory"));
    }
    // SAFETY: `ptr` points to at least `bytes.len()` writable bytes that
    // nothing else refers to.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
    pack_output(ptr as u32, bytes.len() as u32)
}

/// Runs one call of a function export: reads and releases the input buffer,
/// runs `handler` through the JSON envelope and returns the packed output.
///
/// [`export_function!`](crate::export_function) expands to a call of this.
///
/// # Safety
/// `ptr` must be a buffer from `cloudless_alloc(len)` that the host hands
/// over; this function releases it.
#[cfg(target_arch = "wasm32")]
pub unsafe fn call_export<I, O, E, F>(ptr: i32, len: i32, handler: F) -> i64
where
    I: serde::de::DeserializeOwned,
    O: serde::Serialize,
    E: std::fmt::Display,
    F: FnOnce(I) -> Result<O, E>,
{
    let ptr = ptr as u32 as usize as *mut u8;
    if len < 0 || (ptr.is_null() && len != 0) {
        let message = format!("invalid input buffer: ptr={:?} len={}", ptr, len);
        return into_host_buffer(&crate::envelope::error_envelope(&message));
    }
    let len = len as usize;

    let output = if ptr.is_null() {
        crate::envelope::run_handler(&[], handler)
    } else {
        // The handler gets owned values, so the input buffer is released
        // before the handler's output is copied out.
        let output = {
            let input = std::slice::from_raw_parts(ptr, len);
            crate::envelope::run_handler(input, handler)
        };
        deallocate(ptr, len);
        output
    };

    // Rust's stdout buffers until a line break, so text printed without one
    // would otherwise reach the host only during a later call. A flush
    // failure is ignored because the output envelope matters more.
    let _ = std::io::Write::flush(&mut std::io::stdout());

    into_host_buffer(&output)
}

/// Runs one call of a `cloudless_describe_NAME` export: returns the type
/// description of `handler` packed like a function's output.
///
/// [`export_function!`](crate::export_function) expands to a call of this.
#[cfg(target_arch = "wasm32")]
pub fn describe_export<I, O, E, F>(handler: F) -> i64
where
    F: FnOnce(I) -> Result<O, E>,
{
    into_host_buffer(&crate::describe::describe_handler(&handler))
}

/// The allocator exports. They are defined once here with `#[no_mangle]`,
/// and the linker exports them from every cdylib that links this crate.
#[cfg(target_arch = "wasm32")]
mod exports {
    use super::{allocate, deallocate, ABI_VERSION};

    /// Returns the guest ABI version, 1.
    #[no_mangle]
    pub extern "C" fn cloudless_abi_version() -> i32 {
        ABI_VERSION
    }

    /// Returns a pointer to `len` writable bytes, or 0 when `len` is
    /// negative or the allocation fails. `len` 0 returns a valid pointer.
    #[no_mangle]
    pub extern "C" fn cloudless_alloc(len: i32) -> i32 {
        if len < 0 {
            return 0;
        }
        allocate(len as usize) as usize as i32
    }

    /// Releases a buffer from `cloudless_alloc` or a function's output.
    /// Pointer 0 and negative lengths are ignored.
    ///
    /// # Safety
    /// `ptr` and `len` must describe a live buffer from this module's
    /// allocator, released at most once.
    #[no_mangle]
    pub unsafe extern "C" fn cloudless_free(ptr: i32, len: i32) {
        if len < 0 {
            return;
        }
        deallocate(ptr as u32 as usize as *mut u8, len as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_output_splits_at_32_bits() {
        assert_eq!(pack_output(0, 0), 0);
        assert_eq!(pack_output(1, 2), (1_i64 << 32) | 2);
        let packed = pack_output(0xffff_fff0, 0xffff_ffff) as u64;
        assert_eq!(packed >> 32, 0xffff_fff0);
        assert_eq!(packed & 0xffff_ffff, 0xffff_ffff);
    }

    #[test]
    fn allocate_zero_is_releasable() {
        let ptr = allocate(0);
        assert!(!ptr.is_null());
        unsafe { deallocate(ptr, 0) };
    }

    #[test]
    fn allocate_is_writable() {
        let len = 4096;
        let ptr = allocate(len);
        assert!(!ptr.is_null());
        unsafe {
            std::ptr::write_bytes(ptr, 0xab, len);
            assert_eq!(*ptr.add(len - 1), 0xab);
            deallocate(ptr, len);
        }
    }

    #[test]
    fn deallocate_null_is_noop() {
        unsafe { deallocate(std::ptr::null_mut(), 16) };
    }
}
