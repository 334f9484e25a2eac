//! A JSON API in one function: `handle` routes `{method, path, body}` to a
//! handler and returns `{status, body}` like an HTTP response.

mod catalog;
mod quotes;
mod router;

cloudless_sdk::export_function!(handle, router::handle);
