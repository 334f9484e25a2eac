use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpinRequest {
    /// Number of loop iterations. The loop runs forever when this is absent
    /// or null.
    #[serde(default)]
    iterations: Option<u64>,
}

/// Busy-loops for `iterations` rounds, or forever, and returns the number of
/// rounds. The volatile write keeps the optimizer from removing the loop.
pub fn spin(request: SpinRequest) -> Result<u64, String> {
    let mut counter: u64 = 0;
    loop {
        if let Some(limit) = request.iterations {
            if counter >= limit {
                return Ok(counter);
            }
        }
        // SAFETY: `counter` is a live local variable.
        unsafe { std::ptr::write_volatile(&mut counter, counter + 1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_stops_after_iterations() {
        let request = SpinRequest {
            iterations: Some(1000),
        };
        assert_eq!(spin(request), Ok(1000));
    }

    #[test]
    fn spin_request_defaults_to_forever() {
        let request: SpinRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(request.iterations, None);
    }
}
