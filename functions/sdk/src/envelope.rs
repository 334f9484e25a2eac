//! The JSON envelope around every function result.
//!
//! A call returns `{"ok": <output>}` on success and `{"error": "<message>"}`
//! when the input does not parse as the handler's input type, when the
//! handler returns an error, or when the output fails to serialize.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Serialize)]
struct OkEnvelope<'a, T: Serialize> {
    ok: &'a T,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: &'a str,
}

/// Parses `input` as JSON for `I`, runs `handler` and returns the envelope
/// as UTF-8 JSON bytes.
///
/// This is the whole call apart from the pointer handling, so it runs and
/// is tested on any target.
pub fn run_handler<I, O, E, F>(input: &[u8], handler: F) -> Vec<u8>
where
    I: DeserializeOwned,
    O: Serialize,
    E: Display,
    F: FnOnce(I) -> Result<O, E>,
{
    let value: I = match serde_json::from_slice(input) {
        Ok(value) => value,
        Err(err) => return error_envelope(&format!("invalid input: {}", err)),
    };

    match handler(value) {
        Ok(output) => ok_envelope(&output),
        Err(err) => error_envelope(&err.to_string()),
    }
}

/// Serializes `{"ok": output}`, or an error envelope if `output` cannot be
/// represented as JSON (for example a map with non-string keys).
pub fn ok_envelope<T: Serialize>(output: &T) -> Vec<u8> {
    match serde_json::to_vec(&OkEnvelope { ok: output }) {
        Ok(bytes) => bytes,
        Err(err) => error_envelope(&format!("failed to serialize output: {}", err)),
    }
}

/// Serializes `{"error": message}`.
pub fn error_envelope(message: &str) -> Vec<u8> {
    // Writing JSON into a Vec fails only on map keys that are not strings and
    // on errors from Serialize impls, and this struct has neither.
    serde_json::to_vec(&ErrorEnvelope { error: message })
        .expect("a string always serializes to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    struct Pair {
        a: i64,
        b: i64,
    }

    fn add(pair: Pair) -> Result<i64, String> {
        pair.a.checked_add(pair.b).ok_or_else(|| "sum overflows i64".to_string())
    }

    fn parse(bytes: &[u8]) -> Value {
        let text = std::str::from_utf8(bytes).expect("envelope is UTF-8");
        serde_json::from_str(text).expect("envelope is JSON")
    }

    #[test]
    fn handler_success_wraps_in_ok() {
        let out = run_handler(br#"{"a": 2, "b": 3}"#, add);
        assert_eq!(parse(&out), json!({"ok": 5}));
    }

    #[test]
    fn handler_error_wraps_in_error() {
        let input = format!(r#"{{"a": {}, "b": 1}}"#, i64::MAX);
        let out = run_handler(input.as_bytes(), add);
        assert_eq!(parse(&out), json!({"error": "sum overflows i64"}));
    }

    #[test]
    fn malformed_json_is_invalid_input() {
        let out = run_handler(b"{\"a\": 2,", add);
        let message = parse(&out)["error"].as_str().unwrap().to_string();
        assert!(message.starts_with("invalid input: "), "{}", message);
    }

    #[test]
    fn wrong_input_type_is_invalid_input() {
        let out = run_handler(br#"{"a": "two", "b": 3}"#, add);
        let message = parse(&out)["error"].as_str().unwrap().to_string();
        assert!(message.starts_with("invalid input: "), "{}", message);
        assert!(message.contains("invalid type"), "{}", message);
    }

    #[test]
    fn empty_input_is_invalid_input() {
        let out = run_handler(b"", add);
        let message = parse(&out)["error"].as_str().unwrap().to_string();
        assert!(message.starts_with("invalid input: "), "{}", message);
    }

    #[test]
    fn unserializable_output_is_error() {
        let out = run_handler(b"null", |_: ()| {
            let mut map = BTreeMap::new();
            map.insert((1, 2), "tuple keys are not JSON object keys");
            Ok::<_, String>(map)
        });
        let message = parse(&out)["error"].as_str().unwrap().to_string();
        assert!(message.starts_with("failed to serialize output: "), "{}", message);
    }

    #[test]
    fn error_message_is_escaped() {
        let out = error_envelope("quote \" and newline \n");
        assert_eq!(parse(&out), json!({"error": "quote \" and newline \n"}));
    }
}
