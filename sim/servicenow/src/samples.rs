//! The published ServiceNow API samples (see `sim/samples/servicenow-api-samples/SOURCES.md`),
//! embedded verbatim.

use serde_json::Value;

macro_rules! sample {
    ($file:literal) => {
        include_str!(concat!("../../samples/servicenow-api-samples/", $file))
    };
}

/// The body of a Table API 401 (missing or bad credentials or token).
pub(crate) const ERROR_401: &str = sample!("error-401-user-not-authenticated-response.json");
/// The body of a 429 from inbound REST API rate limiting.
pub(crate) const ERROR_429: &str = sample!("error-429-rate-limit-response.json");
/// `POST /oauth_token.do`'s answer (password grant).
const OAUTH_TOKEN: &str = sample!("oauth_token-password-grant-response.json");

/// The token answer's shape, as a JSON object to fill in.
pub(crate) fn oauth_token() -> serde_json::Map<String, Value> {
    match serde_json::from_str(OAUTH_TOKEN).expect("embedded OAuth sample is valid JSON") {
        Value::Object(m) => m,
        _ => unreachable!("the OAuth sample is an object"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_are_json() {
        for s in [super::ERROR_401, super::ERROR_429] {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            assert_eq!(v["status"], "failure");
        }
        assert!(super::oauth_token().contains_key("access_token"));
    }
}
