//! Escaping of substituted values for each channel.

/// Escapes text for HTML element content and attribute values.
pub fn html(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => output.push_str("&amp;"),
            '<' => output.push_str("&lt;"),
            '>' => output.push_str("&gt;"),
            '"' => output.push_str("&quot;"),
            '\'' => output.push_str("&#39;"),
            _ => output.push(c),
        }
    }
    output
}

/// Escapes template text for HTML and turns line breaks into `<br>`.
pub fn html_text(text: &str) -> String {
    html(text).replace("\r\n", "\n").replace('\n', "<br>\n")
}

/// Backslash-escapes every ASCII punctuation character, which CommonMark
/// allows for all of them, so a value cannot open emphasis, links or code.
pub fn markdown(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            output.push('\\');
        }
        output.push(c);
    }
    output
}

/// Replaces line breaks and other control characters with spaces, so a
/// value cannot start a new header line in an email subject.
pub fn single_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Drops control characters other than line breaks, for SMS text.
pub fn plain(text: &str) -> String {
    text.chars().filter(|c| *c == '\n' || !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn html_text_breaks_lines() {
        assert_eq!(html_text("a\r\nb\nc"), "a<br>\nb<br>\nc");
    }

    #[test]
    fn markdown_escapes_punctuation() {
        assert_eq!(markdown("*bold* [x](y) `c`"), r"\*bold\* \[x\]\(y\) \`c\`");
        assert_eq!(markdown("plain text 123"), "plain text 123");
    }

    #[test]
    fn single_line_removes_breaks() {
        assert_eq!(single_line("a\r\nBcc: x\tz"), "a  Bcc: x z");
    }

    #[test]
    fn plain_keeps_newlines() {
        assert_eq!(plain("a\u{7}b\nc\u{1b}"), "ab\nc");
    }
}
