//! `POST /quotes`: prices a list of catalog items.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::catalog;
use crate::router::{ApiResponse, PathParams};

const MAX_ITEMS: usize = 100;
const MAX_QUANTITY: u64 = 10_000;
/// Coupon codes and their discounts in percent.
const COUPONS: [(&str, u64); 2] = [("WELCOME10", 10), ("BULK25", 25)];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteRequest {
    items: Vec<QuoteItem>,
    coupon: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteItem {
    sku: String,
    quantity: u64,
}

#[derive(Serialize)]
struct QuoteLine {
    sku: String,
    quantity: u64,
    amount_cents: u64,
}

/// Builds a 422 response that names the invalid field.
fn invalid(field: &str, message: String) -> ApiResponse {
    ApiResponse::error(422, message, &[("field", json!(field))])
}

pub fn create_quote(_: &PathParams, body: Option<Value>) -> ApiResponse {
    let body = match body {
        Some(body) => body,
        None => return ApiResponse::error(400, "missing request body: expected {\"items\": [...]}".to_string(), &[]),
    };
    let request: QuoteRequest = match serde_json::from_value(body) {
        Ok(request) => request,
        Err(err) => return ApiResponse::error(400, format!("invalid request body: {}", err), &[]),
    };

    if request.items.is_empty() || request.items.len() > MAX_ITEMS {
        return invalid("items", format!("expected 1 to {} items, got {}", MAX_ITEMS, request.items.len()));
    }

    let mut lines = Vec::with_capacity(request.items.len());
    let mut subtotal: u64 = 0;
    for (index, item) in request.items.into_iter().enumerate() {
        let product = match catalog::find(&item.sku) {
            Some(product) => product,
            None => return invalid(&format!("items[{}].sku", index), format!("unknown sku {:?}", item.sku)),
        };
        if item.quantity == 0 || item.quantity > MAX_QUANTITY {
            return invalid(
                &format!("items[{}].quantity", index),
                format!("quantity must be between 1 and {}, got {}", MAX_QUANTITY, item.quantity),
            );
        }
        // 100 items of at most 10,000 units of a catalog price cannot overflow u64.
        let amount = product.unit_price_cents * item.quantity;
        subtotal += amount;
        lines.push(QuoteLine { sku: item.sku, quantity: item.quantity, amount_cents: amount });
    }

    let percent = match &request.coupon {
        None => 0,
        Some(code) => match COUPONS.iter().find(|(known, _)| known == code) {
            Some((_, percent)) => *percent,
            None => return invalid("coupon", format!("unknown coupon {:?}", code)),
        },
    };
    // Rounds the discount down to whole cents, in the seller's favour.
    let discount = subtotal * percent / 100;

    ApiResponse::ok(json!({
        "lines": lines,
        "subtotal_cents": subtotal,
        "discount_cents": discount,
        "total_cents": subtotal - discount,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(body: Value) -> ApiResponse {
        create_quote(&PathParams::new(), Some(body))
    }

    #[test]
    fn quote_with_coupon() {
        let response = quote(json!({
            "items": [{"sku": "pen-1", "quantity": 3}, {"sku": "ink-blue", "quantity": 1}],
            "coupon": "WELCOME10"
        }));
        assert_eq!(response.status, 200);
        assert_eq!(response.body["subtotal_cents"], json!(1449));
        assert_eq!(response.body["discount_cents"], json!(144));
        assert_eq!(response.body["total_cents"], json!(1305));
        assert_eq!(response.body["lines"][0]["amount_cents"], json!(450));
    }

    #[test]
    fn quote_rejects_zero_quantity() {
        let response = quote(json!({"items": [{"sku": "pen-1", "quantity": 0}]}));
        assert_eq!(response.status, 422);
        assert_eq!(response.body["field"], json!("items[0].quantity"));
    }

    #[test]
    fn quote_rejects_unknown_sku_and_coupon() {
        let sku = quote(json!({"items": [{"sku": "pen-1", "quantity": 1}, {"sku": "x", "quantity": 1}]}));
        assert_eq!(sku.body["field"], json!("items[1].sku"));
        let coupon = quote(json!({"items": [{"sku": "pen-1", "quantity": 1}], "coupon": "FREE"}));
        assert_eq!(coupon.status, 422);
        assert_eq!(coupon.body["field"], json!("coupon"));
    }

    #[test]
    fn quote_rejects_bad_body() {
        assert_eq!(quote(json!({"items": "pen"})).status, 400);
        assert_eq!(quote(json!({"items": []})).status, 422);
        assert_eq!(create_quote(&PathParams::new(), None).status, 400);
    }
}
