//! Typed access to the columns of penguins.csv.
//!
//! The data set writes missing values as `NA`, as R does. An empty field
//! also counts as missing.

use crate::csv::{Record, Table};

/// A column found in a table's header.
#[derive(Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    index: usize,
}

impl Column {
    /// Looks up `name` in the header of `table`.
    pub fn find(table: &Table, name: &'static str) -> Result<Column, String> {
        Ok(Column {
            name,
            index: table.column_index(name)?,
        })
    }

    fn raw<'a>(&self, record: &'a Record) -> Option<&'a str> {
        let field = record.fields[self.index].trim();
        if field.is_empty() || field == "NA" {
            None
        } else {
            Some(field)
        }
    }

    /// Returns the field as text, or `None` when it is missing.
    pub fn text(&self, record: &Record) -> Option<String> {
        self.raw(record).map(str::to_string)
    }

    /// Parses the field as a finite number, or returns `None` when it is
    /// missing.
    pub fn number(&self, record: &Record) -> Result<Option<f64>, String> {
        let field = match self.raw(record) {
            Some(field) => field,
            None => return Ok(None),
        };
        match field.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Some(value)),
            _ => Err(self.invalid(record, field, "a number")),
        }
    }

    /// Parses the field as an integer, or returns `None` when it is missing.
    pub fn integer(&self, record: &Record) -> Result<Option<i64>, String> {
        let field = match self.raw(record) {
            Some(field) => field,
            None => return Ok(None),
        };
        field
            .parse::<i64>()
            .map(Some)
            .map_err(|_| self.invalid(record, field, "an integer"))
    }

    fn invalid(&self, record: &Record, field: &str, expected: &str) -> String {
        format!(
            "line {}, column \"{}\": invalid value \"{}\" (expected {} or NA)",
            record.line, self.name, field, expected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table::parse("species,body_mass_g,year\nAdelie,3750,2007\nNA,NA,\nGentoo, 4500.5 ,NA\nAdelie,heavy,2007.5\nAdelie,inf,2008\n").unwrap()
    }

    #[test]
    fn number_parses_and_trims() {
        let table = table();
        let mass = Column::find(&table, "body_mass_g").unwrap();
        assert_eq!(mass.number(&table.records[0]), Ok(Some(3750.0)));
        assert_eq!(mass.number(&table.records[2]), Ok(Some(4500.5)));
    }

    #[test]
    fn number_missing_is_none() {
        let table = table();
        let mass = Column::find(&table, "body_mass_g").unwrap();
        assert_eq!(mass.number(&table.records[1]), Ok(None));
    }

    #[test]
    fn number_invalid_names_line_and_column() {
        let table = table();
        let mass = Column::find(&table, "body_mass_g").unwrap();
        assert_eq!(
            mass.number(&table.records[3]),
            Err("line 5, column \"body_mass_g\": invalid value \"heavy\" (expected a number or NA)".to_string())
        );
    }

    #[test]
    fn number_rejects_infinity() {
        let table = table();
        let mass = Column::find(&table, "body_mass_g").unwrap();
        let err = mass.number(&table.records[4]).unwrap_err();
        assert!(err.starts_with("line 6, column \"body_mass_g\""), "{}", err);
    }

    #[test]
    fn integer_parses_and_rejects_fraction() {
        let table = table();
        let year = Column::find(&table, "year").unwrap();
        assert_eq!(year.integer(&table.records[0]), Ok(Some(2007)));
        assert_eq!(year.integer(&table.records[1]), Ok(None));
        assert_eq!(year.integer(&table.records[2]), Ok(None));
        let err = year.integer(&table.records[3]).unwrap_err();
        assert_eq!(err, "line 5, column \"year\": invalid value \"2007.5\" (expected an integer or NA)");
    }

    #[test]
    fn text_missing_is_none() {
        let table = table();
        let species = Column::find(&table, "species").unwrap();
        assert_eq!(species.text(&table.records[0]), Some("Adelie".to_string()));
        assert_eq!(species.text(&table.records[1]), None);
    }

    #[test]
    fn find_missing_column_fails() {
        let table = table();
        let err = Column::find(&table, "sex").err().unwrap();
        assert!(err.starts_with("missing column \"sex\""), "{}", err);
    }
}
