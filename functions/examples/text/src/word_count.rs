use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Number of entries in `top_words`.
const TOP_WORDS: usize = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordCountRequest {
    text: String,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct WordCountResponse {
    /// Whitespace-separated tokens.
    words: usize,
    /// Lines as `str::lines` splits them: a final line break adds no line.
    lines: usize,
    /// Unicode scalar values.
    characters: usize,
    /// UTF-8 bytes.
    bytes: usize,
    /// The most frequent words, most frequent first. Ties are in code point
    /// order, which is alphabetical for ASCII words.
    top_words: Vec<WordFrequency>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct WordFrequency {
    word: String,
    count: usize,
}

/// Counts words, lines and characters, and lists the five most frequent
/// words.
///
/// For `top_words` each token is lowercased and stripped of leading and
/// trailing characters that are not alphanumeric, so "The," and "the" count
/// as one word and "don't" stays whole. Tokens with no alphanumeric
/// character are left out of `top_words` but still count in `words`.
pub fn word_count(request: WordCountRequest) -> Result<WordCountResponse, String> {
    let text = request.text;

    let mut frequencies: BTreeMap<String, usize> = BTreeMap::new();
    let mut words = 0;
    for token in text.split_whitespace() {
        words += 1;
        let word = token.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        if !word.is_empty() {
            *frequencies.entry(word).or_insert(0) += 1;
        }
    }

    // The map iterates in code point order and the sort is stable, so words
    // with equal counts keep that order.
    let mut top_words: Vec<WordFrequency> = frequencies
        .into_iter()
        .map(|(word, count)| WordFrequency { word, count })
        .collect();
    top_words.sort_by(|a, b| b.count.cmp(&a.count));
    top_words.truncate(TOP_WORDS);

    Ok(WordCountResponse {
        words,
        lines: text.lines().count(),
        characters: text.chars().count(),
        bytes: text.len(),
        top_words,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str) -> WordCountResponse {
        word_count(WordCountRequest { text: text.to_string() }).unwrap()
    }

    fn top(response: &WordCountResponse) -> Vec<(&str, usize)> {
        response
            .top_words
            .iter()
            .map(|entry| (entry.word.as_str(), entry.count))
            .collect()
    }

    #[test]
    fn word_count_empty_text() {
        let response = count("");
        assert_eq!(response.words, 0);
        assert_eq!(response.lines, 0);
        assert_eq!(response.characters, 0);
        assert_eq!(response.bytes, 0);
        assert!(response.top_words.is_empty());
    }

    #[test]
    fn word_count_totals() {
        let response = count("The cat.\nThe hat, the bat!\n");
        assert_eq!(response.words, 6);
        assert_eq!(response.lines, 2);
        assert_eq!(response.characters, 27);
        assert_eq!(response.bytes, 27);
    }

    #[test]
    fn word_count_normalizes_words() {
        let response = count("The cat.\nThe hat, the bat! Don't -- don't");
        assert_eq!(
            top(&response),
            vec![("the", 3), ("don't", 2), ("bat", 1), ("cat", 1), ("hat", 1)]
        );
        assert_eq!(response.words, 9);
    }

    #[test]
    fn word_count_keeps_five_words() {
        let response = count("a b c d e f g a");
        assert_eq!(
            top(&response),
            vec![("a", 2), ("b", 1), ("c", 1), ("d", 1), ("e", 1)]
        );
    }

    #[test]
    fn word_count_unicode_characters() {
        let response = count("Ünïcödé wörds");
        assert_eq!(response.characters, 13);
        assert_eq!(response.bytes, 18);
        assert_eq!(top(&response), vec![("wörds", 1), ("ünïcödé", 1)]);
    }
}
