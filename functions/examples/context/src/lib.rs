//! Functions that use the host namespace `cloudless`: `call_info` returns
//! the call parameters and `log_levels` writes one log record per level.

mod call_info;
mod log_levels;

cloudless_sdk::export_function!(call_info, call_info::call_info);
cloudless_sdk::export_function!(log_levels, log_levels::log_levels);
