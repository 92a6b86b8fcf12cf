//! The provider's JSON documents fetched (no redirect followed: a 3xx is an upstream error) and
//! every answer's body read up to [`MAX_BODY`] bytes.

use super::*;

impl OidcClient {
    /// GET a JSON document that holds no secret (discovery, keys).
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &Url, what: &str) -> Result<T> {
        let resp = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Error::upstream_caused(SYSTEM, format!("{what} could not be fetched from {url}"), e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Error::upstream(
                SYSTEM,
                format!("{what} at {url} answered {status}, a redirect, which is not followed"),
            ));
        }
        if !status.is_success() {
            return Err(Error::upstream(SYSTEM, format!("{what} at {url} answered {status}")));
        }
        let body = read_body(resp, what).await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::upstream_caused(SYSTEM, format!("{what} at {url} is not what OpenID Connect specifies"), e)
        })
    }
}

/// Reads a body up to [`MAX_BODY`] bytes.
pub(crate) async fn read_body(mut resp: reqwest::Response, what: &str) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Error::upstream_caused(SYSTEM, format!("{what} could not be read"), e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::upstream(SYSTEM, format!("{what} is larger than {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
