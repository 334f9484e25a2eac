use serde::de::IgnoredAny;

use cloudless_sdk::CallParams;

/// Returns the parameters of this call, as the host reports them, and logs
/// them at level info.
pub fn call_info(_request: IgnoredAny) -> Result<CallParams, String> {
    let params = cloudless_sdk::call_params();
    cloudless_sdk::info!("deal {} called {} (request {})", params.deal_id, params.function, params.request_id);
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudless_sdk::{testing, Level};

    #[test]
    fn call_info_returns_params() {
        let params = CallParams {
            deal_id: 9,
            caller: "0xcafe".to_string(),
            function: "call_info".to_string(),
            request_id: "0x01".to_string(),
        };
        testing::set_call_params(params.clone());
        assert_eq!(call_info(IgnoredAny).unwrap(), params);
        assert_eq!(
            testing::take_logs(),
            vec![(Level::Info, "deal 9 called call_info (request 0x01)".to_string())]
        );
    }
}
