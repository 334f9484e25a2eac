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
//!     cloudless_sdk::debug!("reversing {} bytes", request.text.len());
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
//!
//! Functions may log through the host with [`error!`], [`warn!`],
//! [`info!`], [`debug!`] and [`trace!`], and read who called them with
//! [`call_params()`]. Both use the host namespace `cloudless` (see
//! [`host`]). On native targets the [`testing`] module replaces the
//! host.

pub mod abi;
pub mod call_params;
pub mod describe;
pub mod envelope;
pub mod host;
pub mod log;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use abi::ABI_VERSION;
pub use call_params::{call_params, CallParams};
pub use envelope::{error_envelope, ok_envelope, run_handler};
pub use log::Level;

/// Exports `$handler` under the Wasm export name `$name` with the signature
/// `(ptr: i32, len: i32) -> i64`.
///
/// The export parses the input bytes as JSON for the handler's input type,
/// calls the handler and returns `{"ok": output}` or `{"error": message}`.
/// The macro also exports `cloudless_describe_$name: () -> i64`, which
/// returns the names of the input and output types for the package
/// manifest (see [`describe`]).
///
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

            #[export_name = ::core::concat!("cloudless_describe_", ::core::stringify!($name))]
            extern "C" fn describe() -> i64 {
                $crate::abi::describe_export($handler)
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
