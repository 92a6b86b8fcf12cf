use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use domain::{Error, FieldError};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

/// Largest request body any endpoint reads.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body read strictly: `application/json` only (415), at most 64 KiB (413), syntactically
/// valid (400), and shaped as `T` (422 naming the field, unknown fields included when `T` denies
/// them). Also keeps the parsed value, for replay comparison.
pub struct JsonBody<T> {
    pub value: T,
    pub raw: serde_json::Value,
}

pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.and_then(|ct| ct.split(';').next()).map(|ct| ct.trim().eq_ignore_ascii_case("application/json"))
        == Some(true)
}

pub async fn read_limited(request: Request) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError(Error::PayloadTooLarge { limit: MAX_BODY }))
}

/// Parses JSON text into `T`, naming the field on a type or shape error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, serde_json::Value), Error> {
    let raw: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::Malformed(format!("body is not valid JSON: {e}")))?;
    let value = from_value(raw.clone())?;
    Ok((value, raw))
}

pub fn from_value<T: DeserializeOwned>(raw: serde_json::Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // The path already ends at an unknown field; for a missing one it stops at the parent and
        // serde names the field only in its message.
        let field = match inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            Some(missing) if path == "." => missing.to_string(),
            Some(missing) => format!("{path}.{missing}"),
            None => path,
        };
        let message = inner.split(" at line ").next().unwrap_or(&inner).to_string();
        Error::Invalid(vec![FieldError::new(if field == "." { "body".to_string() } else { field }, message)])
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let ct = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if !is_json(ct) {
            return Err(ApiError(Error::UnsupportedMediaType { expected: "application/json" }));
        }
        let bytes = read_limited(request).await?;
        let (value, raw) = parse_json(&bytes)?;
        Ok(JsonBody { value, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<Outer>(json.as_bytes()) {
            Err(Error::Invalid(errs)) => errs[0].field.clone(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(field_of(r#"{"name":"a","inner":{"count":"x"}}"#), "inner.count");
        assert_eq!(field_of(r#"{"name":"a","inner":{"count":1,"extra":2}}"#), "inner.extra");
        assert_eq!(field_of(r#"{"name":"a","inner":{"count":1},"bogus":true}"#), "bogus");
        assert_eq!(field_of(r#"{"inner":{"count":1}}"#), "name");
        assert_eq!(field_of(r#"{"name":"a","inner":{}}"#), "inner.count");
    }

    #[test]
    fn broken_json_is_malformed() {
        assert!(matches!(parse_json::<Outer>(b"{\"name\":"), Err(Error::Malformed(_))));
    }
}
