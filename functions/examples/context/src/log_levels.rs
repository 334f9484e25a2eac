use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRequest {
    message: String,
    /// Number of extra info records, for tests of the host's record limit.
    #[serde(default)]
    repeat: u32,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct LogResponse {
    records: u32,
}

/// Writes `message` once at each level from error to trace, then `repeat`
/// more times at level info, and returns the number of records written.
pub fn log_levels(request: LogRequest) -> Result<LogResponse, String> {
    let message = &request.message;
    cloudless_sdk::error!("{}", message);
    cloudless_sdk::warn!("{}", message);
    cloudless_sdk::info!("{}", message);
    cloudless_sdk::debug!("{}", message);
    cloudless_sdk::trace!("{}", message);
    for index in 0..request.repeat {
        cloudless_sdk::info!("{} #{}", message, index + 1);
    }
    Ok(LogResponse { records: 5 + request.repeat })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudless_sdk::{testing, Level};

    #[test]
    fn log_levels_writes_each_level() {
        testing::reset();
        let response = log_levels(LogRequest { message: "hi".to_string(), repeat: 2 }).unwrap();
        assert_eq!(response, LogResponse { records: 7 });
        let levels: Vec<Level> = testing::take_logs().into_iter().map(|(level, _)| level).collect();
        assert_eq!(
            levels,
            vec![Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace, Level::Info, Level::Info]
        );
    }
}
