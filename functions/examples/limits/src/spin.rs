use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpinRequest {
    /// Number of loop iterations. Absent or null loops forever.
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
