use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::escape;
use crate::sms::{self, Encoding};
use crate::template::{self, Piece};

/// Default and maximum of `max_sms_segments`.
const DEFAULT_SMS_SEGMENTS: usize = 3;
const MAX_SMS_SEGMENTS: usize = 10;

/// Built-in templates by event kind: (kind, subject, body).
const BUILT_IN: [(&str, &str, &str); 3] = [
    (
        "deal_completed",
        "Deal {{deal_id}} completed",
        "Hello {{name}},\n\nyour deal {{deal_id}} finished after {{calls}} calls and paid {{amount}} USDC.",
    ),
    (
        "payment_received",
        "Payment of {{amount}} USDC received",
        "Hello {{name}},\n\nwe received {{amount}} USDC for deal {{deal_id}}.",
    ),
    (
        "call_failed",
        "Call of {{function}} failed",
        "Hello {{name}},\n\nthe call of {{function}} in deal {{deal_id}} failed: {{error}}",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Chat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTemplate {
    subject: Option<String>,
    body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequest {
    channel: Channel,
    /// The event's fields. `kind` selects the built-in template.
    event: BTreeMap<String, Value>,
    /// Replaces the built-in template of the event's kind.
    template: Option<CustomTemplate>,
    /// Longest SMS, in segments, before the request is rejected.
    max_sms_segments: Option<usize>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct Notification {
    channel: Channel,
    /// Email subject (email only), on a single line.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    /// Plain text body (email and SMS) or Markdown (chat).
    text: String,
    /// HTML body with escaped values (email only).
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<Encoding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<usize>,
}

fn identity(text: &str) -> String {
    text.to_string()
}

/// Formats an event as a message for one channel.
///
/// Values from the event are escaped for the channel: HTML escaping in the
/// email's `html`, no line breaks in the email subject, Markdown escaping
/// in chat messages and no control characters in SMS. Template text is
/// trusted and copied as it is, apart from HTML escaping in `html`.
pub fn format_notification(request: NotificationRequest) -> Result<Notification, String> {
    let (subject, body) = select_template(&request)?;
    let event = &request.event;
    let body_pieces = template::parse("body", &body)?;
    let subject_pieces = match &subject {
        Some(subject) => Some(template::parse("subject", subject)?),
        None => None,
    };

    match request.channel {
        Channel::Email => {
            let subject_pieces = subject_pieces.ok_or_else(|| {
                "email needs a subject: add template.subject or use an event kind with a built-in template".to_string()
            })?;
            Ok(Notification {
                channel: Channel::Email,
                subject: Some(template::render(&subject_pieces, event, &escape::single_line, &escape::single_line)?),
                text: template::render(&body_pieces, event, &identity, &identity)?,
                html: Some(template::render(&body_pieces, event, &escape::html_text, &escape::html)?),
                encoding: None,
                segments: None,
            })
        }
        Channel::Sms => format_sms(&body_pieces, event, request.max_sms_segments),
        Channel::Chat => {
            let mut text = String::new();
            if let Some(pieces) = subject_pieces {
                let subject = template::render(&pieces, event, &identity, &escape::markdown)?;
                text.push_str(&format!("**{}**\n\n", escape::single_line(&subject)));
            }
            text.push_str(&template::render(&body_pieces, event, &identity, &escape::markdown)?);
            Ok(Notification {
                channel: Channel::Chat,
                subject: None,
                text,
                html: None,
                encoding: None,
                segments: None,
            })
        }
    }
}

/// Returns (subject, body): the request's own template, or the built-in
/// template of the event's kind.
fn select_template(request: &NotificationRequest) -> Result<(Option<String>, String), String> {
    if let Some(custom) = &request.template {
        return Ok((custom.subject.clone(), custom.body.clone()));
    }
    let kind = match request.event.get("kind") {
        Some(Value::String(kind)) => kind,
        Some(other) => return Err(format!("event.kind must be a string, got {}", other)),
        None => return Err("event.kind is missing; set it or pass a template".to_string()),
    };
    match BUILT_IN.iter().find(|(name, _, _)| name == kind) {
        Some((_, subject, body)) => Ok((Some(subject.to_string()), body.to_string())),
        None => {
            let kinds: Vec<&str> = BUILT_IN.iter().map(|(name, _, _)| *name).collect();
            Err(format!(
                "no built-in template for event kind \"{}\" (built-in kinds: {}); pass a template",
                kind,
                kinds.join(", ")
            ))
        }
    }
}

fn format_sms(
    body: &[Piece],
    event: &BTreeMap<String, Value>,
    max_segments: Option<usize>,
) -> Result<Notification, String> {
    let max_segments = max_segments.unwrap_or(DEFAULT_SMS_SEGMENTS);
    if max_segments == 0 || max_segments > MAX_SMS_SEGMENTS {
        return Err(format!(
            "max_sms_segments must be between 1 and {}, got {}",
            MAX_SMS_SEGMENTS, max_segments
        ));
    }
    let text = template::render(body, event, &escape::plain, &escape::plain)?;
    let (encoding, segments) = sms::segments(&text);
    if segments > max_segments {
        return Err(format!(
            "the SMS needs {} segments ({:?} encoding), more than max_sms_segments = {}; shorten the template or raise the limit",
            segments, encoding, max_segments
        ));
    }
    Ok(Notification {
        channel: Channel::Sms,
        subject: None,
        text,
        html: None,
        encoding: Some(encoding),
        segments: Some(segments),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn format(request: Value) -> Result<Notification, String> {
        format_notification(serde_json::from_value(request).unwrap())
    }

    fn payment(channel: &str, name: &str) -> Value {
        json!({
            "channel": channel,
            "event": {"kind": "payment_received", "name": name, "amount": "12.50", "deal_id": 7}
        })
    }

    #[test]
    fn email_escapes_html_and_subject() {
        let notification = format(json!({
            "channel": "email",
            "event": {"kind": "x", "name": "<b>Eve</b> & co", "id": "1\r\nBcc: spy@example.com"},
            "template": {"subject": "Order {{id}}", "body": "Hi {{name}}\nbye"}
        }))
        .unwrap();
        assert_eq!(notification.subject.as_deref(), Some("Order 1  Bcc: spy@example.com"));
        assert_eq!(notification.text, "Hi <b>Eve</b> & co\nbye");
        assert_eq!(
            notification.html.as_deref(),
            Some("Hi &lt;b&gt;Eve&lt;/b&gt; &amp; co<br>\nbye")
        );
    }

    #[test]
    fn email_from_built_in_template() {
        let notification = format(payment("email", "Ada")).unwrap();
        assert_eq!(notification.subject.as_deref(), Some("Payment of 12.50 USDC received"));
        assert_eq!(notification.text, "Hello Ada,\n\nwe received 12.50 USDC for deal 7.");
    }

    #[test]
    fn email_needs_subject() {
        let message = format(json!({
            "channel": "email", "event": {}, "template": {"body": "x"}
        }))
        .unwrap_err();
        assert!(message.starts_with("email needs a subject"), "{}", message);
    }

    #[test]
    fn chat_escapes_markdown() {
        let notification = format(payment("chat", "*Ada* [x](http://e)")).unwrap();
        assert_eq!(
            notification.text,
            "**Payment of 12\\.50 USDC received**\n\nHello \\*Ada\\* \\[x\\]\\(http\\:\\/\\/e\\),\n\nwe received 12\\.50 USDC for deal 7."
        );
    }

    #[test]
    fn sms_counts_segments() {
        let notification = format(payment("sms", "Ada")).unwrap();
        assert_eq!(notification.encoding, Some(Encoding::Gsm7));
        assert_eq!(notification.segments, Some(1));
        let long = format(payment("sms", &"é".repeat(200))).unwrap();
        assert_eq!(long.segments, Some(2));
    }

    #[test]
    fn sms_rejects_too_many_segments() {
        let message = format(payment("sms", &"ж".repeat(300))).unwrap_err();
        assert!(message.contains("more than max_sms_segments = 3"), "{}", message);
    }

    #[test]
    fn sms_strips_control_characters() {
        let notification = format(payment("sms", "A\u{7}da")).unwrap();
        assert!(notification.text.starts_with("Hello Ada,"), "{}", notification.text);
    }

    #[test]
    fn unknown_kind_lists_built_ins() {
        let message = format(json!({"channel": "sms", "event": {"kind": "nope"}})).unwrap_err();
        assert!(message.contains("deal_completed, payment_received, call_failed"), "{}", message);
    }

    #[test]
    fn missing_field_is_error() {
        let message = format(json!({
            "channel": "sms", "event": {"kind": "payment_received", "name": "Ada"}
        }))
        .unwrap_err();
        assert!(message.contains("{{amount}}"), "{}", message);
    }
}
