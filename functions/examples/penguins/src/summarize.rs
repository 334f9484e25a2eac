use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::columns::Column;
use crate::csv::Table;

/// The measurement columns that `summarize` reports, in output order.
const MEASUREMENTS: [&str; 4] = [
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
];

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Species,
    Island,
    Sex,
}

impl GroupBy {
    fn column_name(self) -> &'static str {
        match self {
            GroupBy::Species => "species",
            GroupBy::Island => "island",
            GroupBy::Sex => "sex",
        }
    }
}

fn default_group_by() -> GroupBy {
    GroupBy::Species
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummarizeRequest {
    /// The contents of penguins.csv.
    pub csv: String,
    #[serde(default = "default_group_by")]
    pub group_by: GroupBy,
}

#[derive(Debug, Serialize)]
pub struct SummarizeResponse {
    pub group_by: GroupBy,
    /// Data rows in the CSV.
    pub rows: usize,
    /// One entry per distinct value of the group column, in alphabetical
    /// order. The group of rows whose value is missing comes last.
    pub groups: Vec<GroupSummary>,
}

#[derive(Debug, Serialize)]
pub struct GroupSummary {
    /// Value of the group column, or null for rows where it is NA.
    pub group: Option<String>,
    pub rows: usize,
    /// Rows that have all four measurements.
    pub measured: usize,
    pub bill_length_mm: Statistics,
    pub bill_depth_mm: Statistics,
    pub flipper_length_mm: Statistics,
    pub body_mass_g: Statistics,
}

/// Statistics over the values of one column that are not missing. `mean`,
/// `min` and `max` are null when `count` is 0.
#[derive(Debug, PartialEq, Serialize)]
pub struct Statistics {
    pub count: usize,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Default)]
struct Accumulator {
    count: usize,
    sum: f64,
    min: f64,
    max: f64,
}

impl Accumulator {
    fn add(&mut self, value: f64) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
    }

    fn finish(&self) -> Statistics {
        if self.count == 0 {
            return Statistics {
                count: 0,
                mean: None,
                min: None,
                max: None,
            };
        }
        Statistics {
            count: self.count,
            mean: Some(self.sum / self.count as f64),
            min: Some(self.min),
            max: Some(self.max),
        }
    }
}

#[derive(Default)]
struct GroupAccumulator {
    rows: usize,
    measured: usize,
    measurements: [Accumulator; 4],
}

impl GroupAccumulator {
    fn finish(self, group: Option<String>) -> GroupSummary {
        let [bill_length, bill_depth, flipper_length, body_mass] = self.measurements;
        GroupSummary {
            group,
            rows: self.rows,
            measured: self.measured,
            bill_length_mm: bill_length.finish(),
            bill_depth_mm: bill_depth.finish(),
            flipper_length_mm: flipper_length.finish(),
            body_mass_g: body_mass.finish(),
        }
    }
}

/// Groups the penguins by species, island or sex and reports, per group, the
/// row count, the count of fully measured rows and the mean, minimum and
/// maximum of each measurement, skipping missing values.
pub fn summarize(request: SummarizeRequest) -> Result<SummarizeResponse, String> {
    let table = Table::parse(&request.csv).map_err(|err| err.to_string())?;
    let group_column = Column::find(&table, request.group_by.column_name())?;
    let mut measurement_columns = Vec::with_capacity(MEASUREMENTS.len());
    for name in MEASUREMENTS {
        measurement_columns.push(Column::find(&table, name)?);
    }

    let mut groups: BTreeMap<Option<String>, GroupAccumulator> = BTreeMap::new();
    for record in &table.records {
        let group = groups.entry(group_column.text(record)).or_default();
        group.rows += 1;

        let mut measured = true;
        for (column, accumulator) in measurement_columns.iter().zip(group.measurements.iter_mut()) {
            match column.number(record)? {
                Some(value) => accumulator.add(value),
                None => measured = false,
            }
        }
        if measured {
            group.measured += 1;
        }
    }

    // `None` sorts first in the map, but the group of missing values reads
    // better after the named groups.
    let mut summaries = Vec::with_capacity(groups.len());
    let mut missing_group = None;
    for (group, accumulator) in groups {
        match group {
            Some(_) => summaries.push(accumulator.finish(group)),
            None => missing_group = Some(accumulator.finish(None)),
        }
    }
    summaries.extend(missing_group);

    Ok(SummarizeResponse {
        group_by: request.group_by,
        rows: table.records.len(),
        groups: summaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{full_csv, SAMPLE_CSV};

    fn run(csv: &str, group_by: GroupBy) -> Result<SummarizeResponse, String> {
        summarize(SummarizeRequest {
            csv: csv.to_string(),
            group_by,
        })
    }

    fn labels(response: &SummarizeResponse) -> Vec<Option<&str>> {
        response.groups.iter().map(|group| group.group.as_deref()).collect()
    }

    #[test]
    fn summarize_by_species() {
        let response = run(SAMPLE_CSV, GroupBy::Species).unwrap();
        assert_eq!(response.rows, 7);
        assert_eq!(labels(&response), vec![Some("Adelie"), Some("Chinstrap"), Some("Gentoo")]);

        let adelie = &response.groups[0];
        assert_eq!(adelie.rows, 4);
        assert_eq!(adelie.measured, 3);
        assert_eq!(
            adelie.body_mass_g,
            Statistics {
                count: 3,
                mean: Some(3600.0),
                min: Some(3250.0),
                max: Some(3800.0),
            }
        );
        assert_eq!(adelie.bill_length_mm.count, 3);
    }

    #[test]
    fn summarize_by_sex_puts_missing_last() {
        let response = run(SAMPLE_CSV, GroupBy::Sex).unwrap();
        assert_eq!(labels(&response), vec![Some("female"), Some("male"), None]);
        let missing = &response.groups[2];
        assert_eq!(missing.rows, 2);
        assert_eq!(missing.measured, 1);
    }

    #[test]
    fn summarize_group_without_values() {
        let response = run(SAMPLE_CSV, GroupBy::Island).unwrap();
        let torgersen = response
            .groups
            .iter()
            .find(|group| group.group.as_deref() == Some("Torgersen"))
            .unwrap();
        assert_eq!(torgersen.rows, 1);
        assert_eq!(
            torgersen.flipper_length_mm,
            Statistics {
                count: 0,
                mean: None,
                min: None,
                max: None,
            }
        );
    }

    #[test]
    fn summarize_missing_column_fails() {
        let csv = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,sex\n";
        let err = run(csv, GroupBy::Species).unwrap_err();
        assert!(err.starts_with("missing column \"body_mass_g\""), "{}", err);
    }

    #[test]
    fn summarize_bad_number_names_line() {
        let csv = SAMPLE_CSV.replace("3250", "3,250");
        let err = run(&csv, GroupBy::Species).unwrap_err();
        assert_eq!(err, "line 4: expected 8 fields as in the header, found 9");

        let csv = SAMPLE_CSV.replace("3250", "32x0");
        let err = run(&csv, GroupBy::Species).unwrap_err();
        assert_eq!(err, "line 4, column \"body_mass_g\": invalid value \"32x0\" (expected a number or NA)");
    }

    #[test]
    fn summarize_request_defaults_to_species() {
        let request: SummarizeRequest = serde_json::from_str(r#"{"csv": "a\n"}"#).unwrap();
        assert_eq!(request.group_by, GroupBy::Species);
    }

    #[test]
    fn summarize_request_rejects_unknown_group() {
        let result = serde_json::from_str::<SummarizeRequest>(r#"{"csv": "", "group_by": "year"}"#);
        let err = result.err().unwrap().to_string();
        assert!(err.contains("unknown variant `year`"), "{}", err);
    }

    #[test]
    fn summarize_full_data_set() {
        let csv = match full_csv() {
            Some(csv) => csv,
            None => return,
        };
        let response = run(&csv, GroupBy::Species).unwrap();
        assert_eq!(response.rows, 344);
        let counts: Vec<(Option<&str>, usize, usize)> = response
            .groups
            .iter()
            .map(|group| (group.group.as_deref(), group.rows, group.measured))
            .collect();
        assert_eq!(
            counts,
            vec![
                (Some("Adelie"), 152, 151),
                (Some("Chinstrap"), 68, 68),
                (Some("Gentoo"), 124, 123),
            ]
        );
        let gentoo = &response.groups[2].body_mass_g;
        assert_eq!(gentoo.min, Some(3950.0));
        assert_eq!(gentoo.max, Some(6300.0));
    }
}
