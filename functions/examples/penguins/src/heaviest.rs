use serde::{Deserialize, Serialize};

use crate::columns::Column;
use crate::csv::Table;

fn default_top() -> usize {
    5
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaviestRequest {
    /// The contents of penguins.csv.
    pub csv: String,
    /// Number of penguins to return, 5 when absent.
    #[serde(default = "default_top")]
    pub top: usize,
}

#[derive(Debug, Serialize)]
pub struct HeaviestResponse {
    /// Heaviest first. Penguins of equal mass keep their CSV order.
    pub penguins: Vec<Penguin>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct Penguin {
    pub species: Option<String>,
    pub island: Option<String>,
    pub sex: Option<String>,
    pub body_mass_g: f64,
    pub year: Option<i64>,
}

/// Returns the `top` heaviest penguins. Rows without a body mass are
/// skipped, and fewer than `top` penguins come back when fewer have one.
pub fn heaviest(request: HeaviestRequest) -> Result<HeaviestResponse, String> {
    let table = Table::parse(&request.csv).map_err(|err| err.to_string())?;
    let species = Column::find(&table, "species")?;
    let island = Column::find(&table, "island")?;
    let sex = Column::find(&table, "sex")?;
    let body_mass = Column::find(&table, "body_mass_g")?;
    let year = Column::find(&table, "year")?;

    let mut penguins = Vec::new();
    for record in &table.records {
        let body_mass_g = match body_mass.number(record)? {
            Some(mass) => mass,
            None => continue,
        };
        penguins.push(Penguin {
            species: species.text(record),
            island: island.text(record),
            sex: sex.text(record),
            body_mass_g,
            year: year.integer(record)?,
        });
    }

    // A stable sort, so equal masses keep their CSV order.
    penguins.sort_by(|a, b| b.body_mass_g.total_cmp(&a.body_mass_g));
    penguins.truncate(request.top);
    Ok(HeaviestResponse { penguins })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{full_csv, SAMPLE_CSV};

    fn run(csv: &str, top: usize) -> Result<Vec<Penguin>, String> {
        heaviest(HeaviestRequest {
            csv: csv.to_string(),
            top,
        })
        .map(|response| response.penguins)
    }

    fn masses(penguins: &[Penguin]) -> Vec<f64> {
        penguins.iter().map(|penguin| penguin.body_mass_g).collect()
    }

    #[test]
    fn heaviest_returns_top_two() {
        let penguins = run(SAMPLE_CSV, 2).unwrap();
        assert_eq!(
            penguins[0],
            Penguin {
                species: Some("Gentoo".to_string()),
                island: Some("Biscoe".to_string()),
                sex: Some("male".to_string()),
                body_mass_g: 5700.0,
                year: Some(2009),
            }
        );
        assert_eq!(masses(&penguins), vec![5700.0, 4500.0]);
    }

    #[test]
    fn heaviest_skips_missing_mass() {
        let penguins = run(SAMPLE_CSV, 100).unwrap();
        assert_eq!(
            masses(&penguins),
            vec![5700.0, 4500.0, 3800.0, 3750.0, 3500.0, 3250.0]
        );
    }

    #[test]
    fn heaviest_keeps_csv_order_for_ties() {
        let csv = SAMPLE_CSV.replace("3750", "3800");
        let penguins = run(&csv, 4).unwrap();
        assert_eq!(masses(&penguins), vec![5700.0, 4500.0, 3800.0, 3800.0]);
        assert_eq!(penguins[2].island.as_deref(), Some("Biscoe"));
        assert_eq!(penguins[3].island.as_deref(), Some("Dream"));
    }

    #[test]
    fn heaviest_top_zero_is_empty() {
        assert!(run(SAMPLE_CSV, 0).unwrap().is_empty());
    }

    #[test]
    fn heaviest_missing_column_fails() {
        let csv = "species,island,sex,body_mass_g\nAdelie,Dream,male,3500\n";
        let err = run(csv, 1).unwrap_err();
        assert!(err.starts_with("missing column \"year\""), "{}", err);
    }

    #[test]
    fn heaviest_bad_year_names_line() {
        let csv = SAMPLE_CSV.replace("5700,male,2009", "5700,male,later");
        let err = run(&csv, 1).unwrap_err();
        assert_eq!(err, "line 7, column \"year\": invalid value \"later\" (expected an integer or NA)");
    }

    #[test]
    fn heaviest_request_defaults_to_five() {
        let request: HeaviestRequest = serde_json::from_str(r#"{"csv": ""}"#).unwrap();
        assert_eq!(request.top, 5);
    }

    #[test]
    fn heaviest_full_data_set() {
        let csv = match full_csv() {
            Some(csv) => csv,
            None => return,
        };
        let penguins = run(&csv, 3).unwrap();
        assert_eq!(masses(&penguins), vec![6300.0, 6050.0, 6000.0]);
        assert!(penguins.iter().all(|p| p.species.as_deref() == Some("Gentoo")));
    }
}
