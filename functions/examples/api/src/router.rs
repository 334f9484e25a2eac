//! Request routing: method and path pattern to handler.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{catalog, quotes};

/// Longest path that the router accepts, in bytes.
const MAX_PATH_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiRequest {
    method: String,
    path: String,
    #[serde(default)]
    body: Option<Value>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    pub fn ok(body: Value) -> ApiResponse {
        ApiResponse { status: 200, body }
    }

    /// Builds a response with `{"error": message}` and optional extra fields.
    pub fn error(status: u16, message: String, extra: &[(&str, Value)]) -> ApiResponse {
        let mut body = serde_json::Map::new();
        body.insert("error".to_string(), Value::String(message));
        for (key, value) in extra {
            body.insert(key.to_string(), value.clone());
        }
        ApiResponse { status, body: Value::Object(body) }
    }
}

/// Path parameters by name, from `{name}` segments of the route's pattern.
pub type PathParams = BTreeMap<String, String>;
type Handler = fn(&PathParams, Option<Value>) -> ApiResponse;

/// The routes: method, pattern, handler. A pattern segment `{name}`
/// matches any one non-empty segment.
const ROUTES: [(&str, &str, Handler); 4] = [
    ("GET", "/health", health),
    ("GET", "/products", catalog::list_products),
    ("GET", "/products/{sku}", catalog::get_product),
    ("POST", "/quotes", quotes::create_quote),
];

fn health(_: &PathParams, _: Option<Value>) -> ApiResponse {
    ApiResponse::ok(json!({"status": "ok"}))
}

/// Routes a request and returns its response.
///
/// Client mistakes become 4xx responses, not errors: 404 for an unknown
/// path, 405 with `allow` for a known path with another method, and the
/// handler's 400 or 422 for an invalid body. The function returns an error
/// only for a request that is not an HTTP request at all (empty method, a
/// path without a leading `/`).
pub fn handle(request: ApiRequest) -> Result<ApiResponse, String> {
    let method = request.method.to_ascii_uppercase();
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!("invalid method {:?}: expected letters such as GET or POST", request.method));
    }
    if !request.path.starts_with('/') || request.path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "invalid path {:?}: expected an absolute path starting with '/' of at most {} bytes",
            request.path, MAX_PATH_BYTES
        ));
    }
    // The query string is not used by any route.
    let path = request.path.split('?').next().unwrap_or_default();
    let segments = split_path(path);

    let mut allowed = Vec::new();
    for (route_method, pattern, handler) in ROUTES.iter() {
        if let Some(params) = match_pattern(pattern, &segments) {
            if *route_method == method {
                return Ok(handler(&params, request.body));
            }
            allowed.push(*route_method);
        }
    }

    if allowed.is_empty() {
        return Ok(ApiResponse::error(404, format!("no route for {}", path), &[]));
    }
    Ok(ApiResponse::error(
        405,
        format!("method {} is not allowed for {}", method, path),
        &[("allow", json!(allowed))],
    ))
}

/// Splits a path into its segments, ignoring empty ones, so `/a//b/` and
/// `/a/b` are the same path.
fn split_path(path: &str) -> Vec<&str> {
    path.split('/').filter(|segment| !segment.is_empty()).collect()
}

fn match_pattern(pattern: &str, segments: &[&str]) -> Option<PathParams> {
    let pattern_segments = split_path(pattern);
    if pattern_segments.len() != segments.len() {
        return None;
    }
    let mut params = PathParams::new();
    for (expected, actual) in pattern_segments.iter().zip(segments) {
        if expected.starts_with('{') && expected.ends_with('}') {
            params.insert(expected[1..expected.len() - 1].to_string(), actual.to_string());
        } else if expected != actual {
            return None;
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, path: &str, body: Option<Value>) -> ApiResponse {
        handle(ApiRequest { method: method.to_string(), path: path.to_string(), body }).unwrap()
    }

    #[test]
    fn health_ok() {
        assert_eq!(call("GET", "/health", None), ApiResponse::ok(json!({"status": "ok"})));
    }

    #[test]
    fn method_is_case_insensitive() {
        assert_eq!(call("get", "/health/", None).status, 200);
    }

    #[test]
    fn query_and_slashes_ignored() {
        assert_eq!(call("GET", "//products/?page=2", None).status, 200);
    }

    #[test]
    fn unknown_path_is_404() {
        let response = call("GET", "/nope", None);
        assert_eq!(response.status, 404);
        assert_eq!(response.body, json!({"error": "no route for /nope"}));
    }

    #[test]
    fn wrong_method_is_405() {
        let response = call("DELETE", "/products", None);
        assert_eq!(response.status, 405);
        assert_eq!(response.body["allow"], json!(["GET"]));
    }

    #[test]
    fn path_params_reach_handler() {
        let params = match_pattern("/products/{sku}", &["products", "pen-1"]).unwrap();
        assert_eq!(params.get("sku").map(String::as_str), Some("pen-1"));
        assert!(match_pattern("/products/{sku}", &["products"]).is_none());
    }

    #[test]
    fn invalid_request_is_error() {
        let relative = ApiRequest { method: "GET".to_string(), path: "health".to_string(), body: None };
        assert!(handle(relative).unwrap_err().starts_with("invalid path"));
        let empty = ApiRequest { method: String::new(), path: "/".to_string(), body: None };
        assert!(handle(empty).unwrap_err().starts_with("invalid method"));
    }
}
