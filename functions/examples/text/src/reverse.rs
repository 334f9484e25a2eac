use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    text: String,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct ReverseResponse {
    text: String,
}

/// Reverses the text character by character.
///
/// NOTE: this reverses Unicode scalar values, so combining marks and
/// multi-codepoint emoji end up attached to the wrong neighbour.
pub fn reverse(request: ReverseRequest) -> Result<ReverseResponse, String> {
    Ok(ReverseResponse {
        text: request.text.chars().rev().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reversed(text: &str) -> String {
        reverse(ReverseRequest { text: text.to_string() }).unwrap().text
    }

    #[test]
    fn reverse_ascii() {
        assert_eq!(reversed("hello, world"), "dlrow ,olleh");
    }

    #[test]
    fn reverse_empty() {
        assert_eq!(reversed(""), "");
    }

    #[test]
    fn reverse_multibyte() {
        assert_eq!(reversed("añb€"), "€bña");
    }
}
