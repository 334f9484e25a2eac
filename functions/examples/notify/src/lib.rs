//! Notification formatting: `format_notification` turns an event into an
//! email, SMS or chat message from a built-in or caller-supplied template.

mod escape;
mod format;
mod sms;
mod template;

cloudless_sdk::export_function!(format_notification, format::format_notification);
