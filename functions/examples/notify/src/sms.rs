//! SMS encoding and segment counts.
//!
//! A message in the GSM 03.38 default alphabet is sent with 7-bit encoding:
//! 160 characters fit in one SMS, and a longer message is split into
//! segments of 153 characters, because each segment carries a header.
//! Characters of the extension table count twice. Any other character
//! forces UCS-2 encoding: 70 UTF-16 code units in one SMS, or segments of 67.

use serde::Serialize;

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{c}";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// Returns the encoding of `text` and the number of SMS segments it needs.
pub fn segments(text: &str) -> (Encoding, usize) {
    let mut septets = 0;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            let units = text.encode_utf16().count();
            return (Encoding::Ucs2, count(units, 70, 67));
        }
    }
    (Encoding::Gsm7, count(septets, 160, 153))
}

fn count(units: usize, single: usize, per_segment: usize) -> usize {
    if units <= single {
        1
    } else {
        (units + per_segment - 1) / per_segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_single_and_split() {
        assert_eq!(segments(""), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(307)), (Encoding::Gsm7, 3));
    }

    #[test]
    fn gsm7_extension_counts_twice() {
        assert_eq!(segments(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
    }

    #[test]
    fn ucs2_for_other_characters() {
        assert_eq!(segments("ok ✓"), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"ж".repeat(71)), (Encoding::Ucs2, 2));
        // Each emoji is two UTF-16 code units.
        assert_eq!(segments(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"😀".repeat(36)), (Encoding::Ucs2, 2));
    }
}
