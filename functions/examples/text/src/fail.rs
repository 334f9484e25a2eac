use serde::de::IgnoredAny;

/// Returns an error for any valid JSON input, so hosts can test the
/// `{"error": ...}` envelope.
pub fn fail(_request: IgnoredAny) -> Result<(), String> {
    Err("fail always returns an error, for tests of the error path".to_string())
}
