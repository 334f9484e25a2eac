//! A fixed product catalog.

use serde::Serialize;
use serde_json::{json, Value};

use crate::router::{ApiResponse, PathParams};

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Product {
    pub sku: &'static str,
    pub name: &'static str,
    pub unit_price_cents: u64,
}

pub const PRODUCTS: [Product; 3] = [
    Product { sku: "pen-1", name: "Ballpoint pen", unit_price_cents: 150 },
    Product { sku: "pad-a4", name: "A4 notepad", unit_price_cents: 425 },
    Product { sku: "ink-blue", name: "Blue ink cartridge", unit_price_cents: 999 },
];

pub fn find(sku: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|product| product.sku == sku)
}

pub fn list_products(_: &PathParams, _: Option<Value>) -> ApiResponse {
    ApiResponse::ok(json!({ "products": PRODUCTS }))
}

pub fn get_product(params: &PathParams, _: Option<Value>) -> ApiResponse {
    let sku = params.get("sku").map(String::as_str).unwrap_or_default();
    match find(sku) {
        Some(product) => ApiResponse::ok(json!(product)),
        None => ApiResponse::error(404, format!("product {:?} not found", sku), &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(sku: &str) -> PathParams {
        let mut params = PathParams::new();
        params.insert("sku".to_string(), sku.to_string());
        params
    }

    #[test]
    fn get_known_product() {
        let response = get_product(&params("pad-a4"), None);
        assert_eq!(response.status, 200);
        assert_eq!(response.body["unit_price_cents"], json!(425));
    }

    #[test]
    fn get_unknown_product() {
        let response = get_product(&params("nope"), None);
        assert_eq!(response.status, 404);
        assert_eq!(response.body, json!({"error": "product \"nope\" not found"}));
    }
}
