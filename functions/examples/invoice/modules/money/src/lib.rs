//! Cent arithmetic for the invoice example, as a library module.
//!
//! The exports take and return plain i64 values, because each module of a
//! package has its own linear memory and a caller in another module cannot
//! pass pointers into it. [`INVALID`] reports an overflow or an argument out
//! of range.

/// Result of a call with an argument out of range or an overflow.
pub const INVALID: i64 = i64::MIN;

/// Returns `unit_cents * quantity`, or [`INVALID`] when either is negative
/// or the product overflows.
#[no_mangle]
pub extern "C" fn line_total(unit_cents: i64, quantity: i64) -> i64 {
    if unit_cents < 0 || quantity < 0 {
        return INVALID;
    }
    unit_cents.checked_mul(quantity).unwrap_or(INVALID)
}

/// Returns `amount_cents * basis_points / 10_000`, rounded half to even
/// (banker's rounding), or [`INVALID`] when an argument is negative or
/// `basis_points` is above 10,000 (100 %).
#[no_mangle]
pub extern "C" fn percent_of(amount_cents: i64, basis_points: i64) -> i64 {
    if amount_cents < 0 || !(0..=10_000).contains(&basis_points) {
        return INVALID;
    }
    // i128 fits the product of any i64 amount and 10,000.
    let product = i128::from(amount_cents) * i128::from(basis_points);
    let quotient = product / 10_000;
    let remainder = product % 10_000;
    let rounded = if remainder > 5_000 || (remainder == 5_000 && quotient % 2 == 1) {
        quotient + 1
    } else {
        quotient
    };
    rounded as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_total_multiplies() {
        assert_eq!(line_total(250, 4), 1000);
        assert_eq!(line_total(0, 4), 0);
    }

    #[test]
    fn line_total_rejects_overflow_and_negatives() {
        assert_eq!(line_total(i64::MAX, 2), INVALID);
        assert_eq!(line_total(-1, 2), INVALID);
        assert_eq!(line_total(1, -2), INVALID);
    }

    #[test]
    fn percent_of_rounds_half_to_even() {
        assert_eq!(percent_of(1000, 1900), 190);
        // 0.5 cent rounds to the even neighbour: 12.5 -> 12, 13.5 -> 14.
        assert_eq!(percent_of(125, 1000), 12);
        assert_eq!(percent_of(135, 1000), 14);
        assert_eq!(percent_of(126, 1000), 13);
        assert_eq!(percent_of(i64::MAX, 10_000), i64::MAX);
    }

    #[test]
    fn percent_of_rejects_out_of_range() {
        assert_eq!(percent_of(100, 10_001), INVALID);
        assert_eq!(percent_of(100, -1), INVALID);
        assert_eq!(percent_of(-100, 10), INVALID);
    }
}
