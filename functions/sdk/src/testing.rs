//! A stand-in for the host on native targets, for unit tests of handlers
//! that log or read call parameters.
//!
//! Each test thread has its own state: the call parameters that
//! [`call_params`](crate::call_params) returns and the log records that the
//! logging macros produce. This module does not exist on wasm32.

use std::cell::RefCell;

use crate::call_params::CallParams;
use crate::log::Level;

thread_local! {
    static PARAMS: RefCell<CallParams> = RefCell::new(CallParams::default());
    static LOGS: RefCell<Vec<(Level, String)>> = RefCell::new(Vec::new());
}

/// Sets the parameters that `call_params()` returns on this thread.
pub fn set_call_params(params: CallParams) {
    PARAMS.with(|cell| *cell.borrow_mut() = params);
}

/// Returns and clears the log records of this thread, oldest first.
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

/// Clears the call parameters and log records of this thread.
pub fn reset() {
    set_call_params(CallParams::default());
    take_logs();
}

pub(crate) fn record_log(level: i32, message: &str) {
    let level = match level {
        0 => Level::Error,
        1 => Level::Warn,
        2 => Level::Info,
        3 => Level::Debug,
        _ => Level::Trace,
    };
    LOGS.with(|cell| cell.borrow_mut().push((level, message.to_string())));
}

pub(crate) fn call_params_json() -> Vec<u8> {
    PARAMS.with(|cell| serde_json::to_vec(&*cell.borrow()).expect("CallParams serializes to JSON"))
}
