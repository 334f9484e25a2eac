//! Guest SDK for Cloudless functions.
//!
//! A function is a plain Rust function `fn(Input) -> Result<Output, E>` with
//! `Input: serde::de::DeserializeOwned`, `Output: serde::Serialize` and
//! `E: Display` (usually `String`). [`export_function!`] turns it into a
//! Wasm export that follows guest ABI v1:
//!
//! ```
//! #[derive(serde::Deserialize)]
//! pub struct Request {
//!     text: String,
//! }
//!
//! pub fn reverse(request: Request) -> Result<String, String> {
//!     Ok(request.text.chars().rev().collect())
//! }
//!
//! cloudless_sdk::export_function!(reverse, reverse);
//! #
//! # let output = cloudless_sdk::run_handler(br#"{"text": "abc"}"#, reverse);
//! # assert_eq!(output, br#"{"ok":"cba"}"#);
//! ```
//!
//! Linking this crate also adds the exports `cloudless_abi_version`,
//! `cloudless_alloc` and `cloudless_free`, so a module needs nothing else.
//! Build the module as a `cdylib` for `wasm32-wasi`.

pub mod abi;
pub mod envelope;

pub use abi::ABI_VERSION;
pub use envelope::{error_envelope, ok_envelope, run_handler};

/// Exports `$handler` under the Wasm export name `$name` with the signature
/// `(ptr: i32, len: i32) -> i64`.
///
/// The export parses the input bytes as JSON for the handler's input type,
/// calls the handler and returns `{"ok": output}` or `{"error": message}`.
/// On other targets the macro adds no export, so handlers can be
/// unit-tested natively. It still checks the handler's type and keeps the
/// handler from being reported as dead code.
#[macro_export]
macro_rules! export_function {
    ($name:ident, $handler:path $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[export_name = ::core::stringify!($name)]
            unsafe extern "C" fn export(ptr: i32, len: i32) -> i64 {
                $crate::abi::call_export(ptr, len, $handler)
            }
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            #[used]
            static HANDLER: fn(&[u8]) -> ::std::vec::Vec<u8> =
                |input| $crate::envelope::run_handler(input, $handler);
        };
    };
}
