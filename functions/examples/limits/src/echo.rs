use serde_json::Value;

/// Returns the input value.
///
/// NOTE: the value goes through `serde_json::Value`, so object keys come back
/// sorted and integers beyond the i64/u64 range come back as floats.
pub fn echo(value: Value) -> Result<Value, String> {
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn echo_returns_input() {
        let value = json!({"b": [1, 2.5, "three", null], "a": {"nested": true}});
        assert_eq!(echo(value.clone()), Ok(value));
    }
}
