//! Functions over the Palmer Penguins data set: pass the text of
//! penguins.csv (from the `palmerpenguins` package) as the `csv` field.

mod columns;
mod csv;
mod heaviest;
mod summarize;
#[cfg(test)]
mod test_data;

cloudless_sdk::export_function!(summarize, summarize::summarize);
cloudless_sdk::export_function!(heaviest, heaviest::heaviest);
