//! `{{field}}` templates.
//!
//! A placeholder is `{{` and `}}` around a field name of ASCII letters,
//! digits, `_` and `.`, with optional spaces inside the braces. Text outside
//! placeholders is copied as it is. A template cannot contain a literal
//! `{{`.

use std::collections::BTreeMap;

use serde_json::Value;

/// One piece of a parsed template.
#[derive(Debug, PartialEq)]
pub enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// Splits `template` into text and placeholders. `name` names the template
/// in error messages.
pub fn parse<'a>(name: &str, template: &'a str) -> Result<Vec<Piece<'a>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after_open = &rest[start + 2..];
        let end = match after_open.find("}}") {
            Some(end) => end,
            None => {
                let offset = template.len() - rest.len() + start;
                return Err(format!("{} template: unclosed \"{{{{\" at byte {}", name, offset));
            }
        };
        let field = after_open[..end].trim();
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(format!(
                "{} template: invalid placeholder \"{{{{{}}}}}\" (expected a field name of letters, digits, '_' and '.')",
                name,
                &after_open[..end]
            ));
        }
        pieces.push(Piece::Field(field));
        rest = &after_open[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// Looks up `field` in the event: `a.b` reads key `b` of object `a`.
/// Returns the value as text, or an error naming the field.
pub fn field_text(event: &BTreeMap<String, Value>, field: &str) -> Result<String, String> {
    let mut parts = field.split('.');
    let first = parts.next().unwrap_or_default();
    let mut value = event.get(first);
    for part in parts {
        value = value.and_then(|v| v.get(part));
    }
    match value {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Number(number)) => Ok(number.to_string()),
        Some(Value::Bool(flag)) => Ok(flag.to_string()),
        Some(Value::Null) | None => {
            let known: Vec<&str> = event.keys().map(String::as_str).collect();
            Err(format!(
                "event has no value for placeholder {{{{{}}}}} (event fields: {})",
                field,
                known.join(", ")
            ))
        }
        Some(_) => Err(format!(
            "event field \"{}\" is an object or array; a placeholder needs a string, number or boolean",
            field
        )),
    }
}

/// Fills a parsed template from `event`, passing each field's text through
/// `escape`. Template text is passed through `escape_text`.
pub fn render(
    pieces: &[Piece],
    event: &BTreeMap<String, Value>,
    escape_text: &dyn Fn(&str) -> String,
    escape: &dyn Fn(&str) -> String,
) -> Result<String, String> {
    let mut output = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => output.push_str(&escape_text(text)),
            Piece::Field(field) => output.push_str(&escape(&field_text(event, field)?)),
        }
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> BTreeMap<String, Value> {
        serde_json::from_value(json!({
            "kind": "test",
            "name": "Ada",
            "count": 3,
            "paid": true,
            "deal": {"id": 7},
            "missing": null,
        }))
        .unwrap()
    }

    fn identity(text: &str) -> String {
        text.to_string()
    }

    fn fill(template: &str) -> Result<String, String> {
        let pieces = parse("test", template)?;
        render(&pieces, &event(), &identity, &identity)
    }

    #[test]
    fn parse_splits_text_and_fields() {
        assert_eq!(
            parse("t", "Hi {{ name }}!").unwrap(),
            vec![Piece::Text("Hi "), Piece::Field("name"), Piece::Text("!")]
        );
        assert_eq!(parse("t", "").unwrap(), vec![]);
    }

    #[test]
    fn parse_rejects_unclosed() {
        let message = parse("body", "Hi {{name").unwrap_err();
        assert_eq!(message, "body template: unclosed \"{{\" at byte 3");
    }

    #[test]
    fn parse_rejects_bad_field() {
        let message = parse("body", "{{na me}}").unwrap_err();
        assert!(message.contains("invalid placeholder \"{{na me}}\""), "{}", message);
        assert!(parse("body", "{{}}").is_err());
    }

    #[test]
    fn render_value_kinds() {
        assert_eq!(fill("{{name}} {{count}} {{paid}} {{deal.id}}").unwrap(), "Ada 3 true 7");
    }

    #[test]
    fn render_missing_field() {
        let message = fill("{{nope}}").unwrap_err();
        assert!(message.starts_with("event has no value for placeholder {{nope}}"), "{}", message);
        assert!(fill("{{missing}}").is_err());
        assert!(fill("{{deal.nope}}").is_err());
    }

    #[test]
    fn render_rejects_object() {
        let message = fill("{{deal}}").unwrap_err();
        assert!(message.contains("object or array"), "{}", message);
    }

    #[test]
    fn render_escapes_fields_only() {
        let pieces = parse("t", "<b>{{name}}</b>").unwrap();
        let upper = |text: &str| text.to_uppercase();
        assert_eq!(render(&pieces, &event(), &identity, &upper).unwrap(), "<b>ADA</b>");
    }
}
