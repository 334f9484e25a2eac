//! The parameters of the current call, as the host reports them.

use serde::{Deserialize, Serialize};

/// Caller, function and deal of the current call.
///
/// When the runtime runs a function outside a deal (for example in tests),
/// `deal_id` is 0 and `caller` and `request_id` are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallParams {
    /// On-chain id of the deal that pays for the call.
    pub deal_id: u64,
    /// Address of the caller, as `0x` and 40 hex digits.
    pub caller: String,
    /// Name of the called function.
    pub function: String,
    /// Id of the request, as `0x` and hex digits.
    pub request_id: String,
}

/// Returns the parameters of the current call from the host.
///
/// # Panics
/// Panics, which traps the call, if the host returns JSON that does not
/// match [`CallParams`]. That is a host bug, not something a function can
/// recover from.
pub fn call_params() -> CallParams {
    let json = crate::host::read_call_params();
    match parse_call_params(&json) {
        Ok(params) => params,
        Err(message) => panic!("{}", message),
    }
}

/// Parses the JSON that `cloudless.call_params` writes.
pub fn parse_call_params(json: &[u8]) -> Result<CallParams, String> {
    serde_json::from_slice(json).map_err(|err| {
        format!(
            "invalid call parameters from the host ({}): {}",
            err,
            String::from_utf8_lossy(json)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn parse_host_json() {
        let json = br#"{"deal_id": 7, "caller": "0xabc", "function": "f", "request_id": "0x01"}"#;
        let params = parse_call_params(json).unwrap();
        assert_eq!(params.deal_id, 7);
        assert_eq!(params.caller, "0xabc");
        assert_eq!(params.function, "f");
        assert_eq!(params.request_id, "0x01");
    }

    #[test]
    fn parse_rejects_missing_field() {
        let message = parse_call_params(br#"{"deal_id": 7}"#).unwrap_err();
        assert!(message.contains("missing field"), "{}", message);
    }

    #[test]
    fn parse_rejects_negative_deal_id() {
        let json = br#"{"deal_id": -1, "caller": "", "function": "f", "request_id": ""}"#;
        assert!(parse_call_params(json).is_err());
    }

    #[test]
    fn call_params_reads_test_double() {
        let expected = CallParams {
            deal_id: 42,
            caller: "0x00000000000000000000000000000000000000aa".to_string(),
            function: "handle".to_string(),
            request_id: "0x0102".to_string(),
        };
        testing::set_call_params(expected.clone());
        assert_eq!(call_params(), expected);
    }

    #[test]
    fn call_params_default_outside_deal() {
        testing::reset();
        assert_eq!(call_params(), CallParams::default());
    }
}
