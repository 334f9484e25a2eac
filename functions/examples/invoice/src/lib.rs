//! Facade of a two-module package: `total` prices an invoice with the cent
//! arithmetic of the `money` module, which comes first in the manifest.

mod money;
mod total;

cloudless_sdk::export_function!(total, total::total);
