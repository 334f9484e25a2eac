use serde::{Deserialize, Serialize};

use crate::money;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoice {
    lines: Vec<InvoiceLine>,
    /// Tax rate in basis points: 1900 is 19 %.
    tax_basis_points: i64,
    /// Discount on the subtotal in basis points, before tax.
    #[serde(default)]
    discount_basis_points: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceLine {
    description: String,
    unit_price_cents: i64,
    quantity: i64,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct InvoiceTotal {
    lines: Vec<PricedLine>,
    subtotal_cents: i64,
    discount_cents: i64,
    tax_cents: i64,
    total_cents: i64,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct PricedLine {
    description: String,
    amount_cents: i64,
}

/// Totals an invoice: line amounts, subtotal, discount, tax on the
/// discounted subtotal, and the total. Rounds the discount and the tax half
/// to even.
pub fn total(invoice: Invoice) -> Result<InvoiceTotal, String> {
    if invoice.lines.is_empty() {
        return Err("lines must contain at least one line".to_string());
    }

    let mut lines = Vec::with_capacity(invoice.lines.len());
    let mut subtotal: i64 = 0;
    for (index, line) in invoice.lines.into_iter().enumerate() {
        let amount = money::line_total(line.unit_price_cents, line.quantity).ok_or_else(|| {
            format!(
                "lines[{}]: unit_price_cents {} times quantity {} is negative or too large",
                index, line.unit_price_cents, line.quantity
            )
        })?;
        subtotal = subtotal
            .checked_add(amount)
            .ok_or_else(|| format!("lines[{}]: the subtotal overflows", index))?;
        lines.push(PricedLine { description: line.description, amount_cents: amount });
    }

    let discount = money::percent_of(subtotal, invoice.discount_basis_points).ok_or_else(|| {
        format!("discount_basis_points must be between 0 and 10000, got {}", invoice.discount_basis_points)
    })?;
    let taxable = subtotal - discount;
    let tax = money::percent_of(taxable, invoice.tax_basis_points).ok_or_else(|| {
        format!("tax_basis_points must be between 0 and 10000, got {}", invoice.tax_basis_points)
    })?;
    let total = taxable.checked_add(tax).ok_or_else(|| "the total overflows".to_string())?;

    Ok(InvoiceTotal { lines, subtotal_cents: subtotal, discount_cents: discount, tax_cents: tax, total_cents: total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(value: serde_json::Value) -> Result<InvoiceTotal, String> {
        total(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn total_with_discount_and_tax() {
        let result = run(json!({
            "lines": [
                {"description": "pens", "unit_price_cents": 150, "quantity": 3},
                {"description": "ink", "unit_price_cents": 999, "quantity": 1}
            ],
            "tax_basis_points": 1900,
            "discount_basis_points": 1000
        }))
        .unwrap();
        assert_eq!(result.subtotal_cents, 1449);
        // 144.9 -> 145, then 19 % of 1304 = 247.76 -> 248.
        assert_eq!(result.discount_cents, 145);
        assert_eq!(result.tax_cents, 248);
        assert_eq!(result.total_cents, 1552);
        assert_eq!(result.lines[0], PricedLine { description: "pens".to_string(), amount_cents: 450 });
    }

    #[test]
    fn total_rejects_bad_rates() {
        let message = run(json!({
            "lines": [{"description": "x", "unit_price_cents": 1, "quantity": 1}],
            "tax_basis_points": 10001
        }))
        .unwrap_err();
        assert_eq!(message, "tax_basis_points must be between 0 and 10000, got 10001");
    }

    #[test]
    fn total_rejects_overflow() {
        let message = run(json!({
            "lines": [{"description": "x", "unit_price_cents": i64::MAX, "quantity": 2}],
            "tax_basis_points": 0
        }))
        .unwrap_err();
        assert!(message.starts_with("lines[0]:"), "{}", message);
    }

    #[test]
    fn total_rejects_empty() {
        assert!(run(json!({"lines": [], "tax_basis_points": 0})).is_err());
    }
}
