//! A small CSV reader (RFC 4180): comma-separated fields, LF or CRLF line
//! endings, and double-quoted fields that may contain commas, line breaks
//! and doubled quotes (`""`).
//!
//! Every record keeps the line number where it starts, so errors can point
//! at the line in the caller's file.

use std::fmt;

/// A CSV error at a 1-based line number.
#[derive(Debug, PartialEq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One data record and the line where it starts.
#[derive(Debug, PartialEq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A parsed CSV file: the header names and the data records. Every record
/// has exactly as many fields as the header.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub records: Vec<Record>,
}

impl Table {
    /// Parses CSV text whose first record is the header. Blank lines are
    /// skipped and header names are trimmed of surrounding whitespace.
    pub fn parse(text: &str) -> Result<Table, CsvError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut records = read_records(text)?.into_iter();

        let header = match records.next() {
            Some(record) => record.fields.iter().map(|name| name.trim().to_string()).collect(),
            None => {
                return Err(CsvError {
                    line: 1,
                    message: "the CSV text is empty, but a header line is required".to_string(),
                })
            }
        };
        let table = Table {
            header,
            records: records.collect(),
        };

        for record in &table.records {
            if record.fields.len() != table.header.len() {
                return Err(CsvError {
                    line: record.line,
                    message: format!(
                        "expected {} fields as in the header, found {}",
                        table.header.len(),
                        record.fields.len()
                    ),
                });
            }
        }
        Ok(table)
    }

    /// Returns the index of the first column named `name`, or an error that
    /// lists the header's columns.
    pub fn column_index(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| {
                format!(
                    "missing column \"{}\" in the CSV header (found: {})",
                    name,
                    self.header.join(", ")
                )
            })
    }
}

/// Splits CSV text into records, without checking field counts.
fn read_records(text: &str) -> Result<Vec<Record>, CsvError> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    // True once a field's closing quote was read. After it, only a comma or
    // a line break may follow.
    let mut field_was_quoted = false;
    let mut in_quotes = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut quote_line = 1;

    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    in_quotes = false;
                    field_was_quoted = true;
                }
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }

        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                field_was_quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                let is_blank_line = fields.is_empty() && field.is_empty() && !field_was_quoted;
                if !is_blank_line {
                    fields.push(std::mem::take(&mut field));
                    records.push(Record {
                        line: record_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                field_was_quoted = false;
                line += 1;
                record_line = line;
            }
            '"' if field.is_empty() && !field_was_quoted => {
                in_quotes = true;
                quote_line = line;
            }
            '"' => {
                return Err(CsvError {
                    line,
                    message: "unexpected double quote in an unquoted field. Quote the whole field and double the quotes inside it".to_string(),
                })
            }
            _ if field_was_quoted => {
                return Err(CsvError {
                    line,
                    message: format!("unexpected character {:?} after a closing quote. Only a comma or a line break may follow it", c),
                })
            }
            _ => field.push(c),
        }
    }

    if in_quotes {
        return Err(CsvError {
            line: quote_line,
            message: "a quoted field is never closed".to_string(),
        });
    }
    if !fields.is_empty() || !field.is_empty() || field_was_quoted {
        fields.push(field);
        records.push(Record {
            line: record_line,
            fields,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(table: &Table) -> Vec<(usize, Vec<&str>)> {
        table
            .records
            .iter()
            .map(|record| (record.line, record.fields.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn parse_simple_table() {
        let table = Table::parse("a,b\n1,2\n3,4\n").unwrap();
        assert_eq!(table.header, vec!["a", "b"]);
        assert_eq!(rows(&table), vec![(2, vec!["1", "2"]), (3, vec!["3", "4"])]);
    }

    #[test]
    fn parse_without_final_newline() {
        let table = Table::parse("a,b\n1,2").unwrap();
        assert_eq!(rows(&table), vec![(2, vec!["1", "2"])]);
    }

    #[test]
    fn parse_crlf_and_blank_lines() {
        let table = Table::parse("a,b\r\n\r\n1,2\r\n\n3,4\r\n").unwrap();
        assert_eq!(rows(&table), vec![(3, vec!["1", "2"]), (5, vec!["3", "4"])]);
    }

    #[test]
    fn parse_quoted_fields() {
        let text = "name,note\n\"Biscoe, south\",\"say \"\"hi\"\"\"\n\"\",x\n";
        let table = Table::parse(text).unwrap();
        assert_eq!(
            rows(&table),
            vec![(2, vec!["Biscoe, south", "say \"hi\""]), (3, vec!["", "x"])]
        );
    }

    #[test]
    fn parse_line_break_in_quotes() {
        let text = "a,b\n\"two\nlines\",1\n3,4\n";
        let table = Table::parse(text).unwrap();
        assert_eq!(
            rows(&table),
            vec![(2, vec!["two\nlines", "1"]), (4, vec!["3", "4"])]
        );
    }

    #[test]
    fn parse_empty_fields() {
        let table = Table::parse("a,b,c\n,,\n").unwrap();
        assert_eq!(rows(&table), vec![(2, vec!["", "", ""])]);
    }

    #[test]
    fn parse_trims_header_and_bom() {
        let table = Table::parse("\u{feff} a , b\n1,2\n").unwrap();
        assert_eq!(table.header, vec!["a", "b"]);
    }

    #[test]
    fn parse_empty_text_fails() {
        let err = Table::parse("").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("empty"), "{}", err);
    }

    #[test]
    fn parse_field_count_mismatch_fails() {
        let err = Table::parse("a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(err.to_string(), "line 3: expected 2 fields as in the header, found 1");
    }

    #[test]
    fn parse_unclosed_quote_fails() {
        let err = Table::parse("a,b\n1,2\n\"open,3\n4,5\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("never closed"), "{}", err);
    }

    #[test]
    fn parse_text_after_quote_fails() {
        let err = Table::parse("a,b\n\"x\"y,2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("after a closing quote"), "{}", err);
    }

    #[test]
    fn parse_quote_inside_field_fails() {
        let err = Table::parse("a,b\nx\"y,2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unexpected double quote"), "{}", err);
    }

    #[test]
    fn column_index_finds_column() {
        let table = Table::parse("species,island\n").unwrap();
        assert_eq!(table.column_index("island"), Ok(1));
    }

    #[test]
    fn column_index_missing_lists_header() {
        let table = Table::parse("species,island\n").unwrap();
        assert_eq!(
            table.column_index("sex"),
            Err("missing column \"sex\" in the CSV header (found: species, island)".to_string())
        );
    }
}
