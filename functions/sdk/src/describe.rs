//! Type descriptions of exported functions, for the package manifest.
//!
//! For each function `NAME`, [`export_function!`](crate::export_function)
//! also exports `cloudless_describe_NAME: () -> i64`. It returns a buffer,
//! packed like a function's output, with the JSON
//! `{"input": "<type>", "output": "<type>"}`. The packager calls these
//! exports once at build time and records the names in the manifest's
//! `functions[].input` and `functions[].output`.
//!
//! The names come from `std::any::type_name` with the module paths removed,
//! so `penguins::summarize::SummarizeRequest` becomes `SummarizeRequest` and
//! `alloc::vec::Vec<alloc::string::String>` becomes `Vec<String>`. Untyped
//! JSON (`serde_json::Value`, `serde::de::IgnoredAny`) becomes `json`.
//! `std::any::type_name` does not promise a stable format, so the names are
//! for people and tools that display them, not for parsing.

use serde::Serialize;

/// Maximum length of a type name in the manifest, in characters. Longer names become `json`.
pub const MAX_TYPE_NAME_CHARS: usize = 128;

/// Name of untyped JSON input or output in the manifest.
pub const UNTYPED: &str = "json";

const UNTYPED_RUST_TYPES: [&str; 2] = ["serde_json::value::Value", "serde::de::ignored_any::IgnoredAny"];

#[derive(Serialize)]
struct FunctionTypes {
    input: String,
    output: String,
}

/// Returns the manifest name of type `T`.
pub fn manifest_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    if UNTYPED_RUST_TYPES.contains(&full) {
        return UNTYPED.to_string();
    }
    let short = strip_module_paths(full);
    if short.is_empty() || short.chars().count() > MAX_TYPE_NAME_CHARS {
        return UNTYPED.to_string();
    }
    short
}

/// Removes the module path from every path in a type name:
/// `a::b::C<d::E>` becomes `C<E>`.
pub fn strip_module_paths(type_name: &str) -> String {
    let mut result = String::with_capacity(type_name.len());
    let mut segment = String::new();
    let mut chars = type_name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear();
        } else if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else {
            result.push_str(&segment);
            segment.clear();
            result.push(c);
        }
    }
    result.push_str(&segment);
    result
}

/// Returns the JSON type description of a handler `fn(I) -> Result<O, E>`.
pub fn describe_handler<I, O, E, F>(_handler: &F) -> Vec<u8>
where
    F: FnOnce(I) -> Result<O, E>,
{
    let types = FunctionTypes {
        input: manifest_type_name::<I>(),
        output: manifest_type_name::<O>(),
    };
    serde_json::to_vec(&types).expect("two strings serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    mod inner {
        pub struct Request;
        pub struct Response;
    }

    fn handler(_: inner::Request) -> Result<Vec<inner::Response>, String> {
        Ok(Vec::new())
    }

    fn untyped(value: Value) -> Result<Value, String> {
        Ok(value)
    }

    fn described<I, O, E, F: FnOnce(I) -> Result<O, E>>(handler: F) -> Value {
        serde_json::from_slice(&describe_handler(&handler)).unwrap()
    }

    #[test]
    fn strip_paths_in_generics() {
        assert_eq!(strip_module_paths("a::b::C<d::E, f::G>"), "C<E, G>");
        assert_eq!(strip_module_paths("()"), "()");
        assert_eq!(strip_module_paths("&str"), "&str");
        assert_eq!(strip_module_paths("[u8; 4]"), "[u8; 4]");
        assert_eq!(strip_module_paths("(a::B, u64)"), "(B, u64)");
    }

    #[test]
    fn describe_named_types() {
        assert_eq!(described(handler), json!({"input": "Request", "output": "Vec<Response>"}));
    }

    #[test]
    fn describe_untyped_json() {
        assert_eq!(described(untyped), json!({"input": "json", "output": "json"}));
        let ignore = |_: serde::de::IgnoredAny| Ok::<(), String>(());
        assert_eq!(described(ignore), json!({"input": "json", "output": "()"}));
    }

    #[test]
    fn describe_std_types() {
        let lengths = |text: String| Ok::<_, String>(text.len() as u64);
        assert_eq!(described(lengths), json!({"input": "String", "output": "u64"}));
    }

    #[test]
    fn long_name_becomes_json() {
        struct Nested<T>(T);
        type N4<T> = Nested<Nested<Nested<Nested<T>>>>;
        type Deep = N4<N4<N4<N4<N4<u8>>>>>;
        assert!(strip_module_paths(std::any::type_name::<Deep>()).len() > MAX_TYPE_NAME_CHARS);
        assert_eq!(manifest_type_name::<Deep>(), "json");
    }
}
