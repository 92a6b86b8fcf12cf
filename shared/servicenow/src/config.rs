//! How to reach one ServiceNow instance. Secrets are kept here and never shown by `Debug`.

use std::fmt;
use std::time::Duration;

/// How Gatehouse authenticates to ServiceNow.
#[derive(Clone, PartialEq, Eq)]
pub enum SnAuth {
    /// HTTP Basic with an integration user (the default).
    Basic { user: String, password: String },
    /// OAuth 2.0 client credentials: `POST /oauth_token.do` (`grant_type=client_credentials`,
    /// form-encoded), the bearer token cached until 60 s before its `expires_in` runs out.
    OAuthClientCredentials { client_id: String, client_secret: String },
}

impl Default for SnAuth {
    fn default() -> Self {
        SnAuth::Basic { user: String::new(), password: String::new() }
    }
}

impl fmt::Debug for SnAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnAuth::Basic { user, .. } => {
                f.debug_struct("Basic").field("user", user).field("password", &"<redacted>").finish()
            }
            SnAuth::OAuthClientCredentials { client_id, .. } => f
                .debug_struct("OAuthClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
        }
    }
}

impl SnAuth {
    /// "basic" or "oauth", for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SnAuth::Basic { .. } => "basic",
            SnAuth::OAuthClientCredentials { .. } => "oauth",
        }
    }
}

/// Settings of a [`crate::Client`]. Build it with [`ServiceNowConfig::new`] or a struct literal
/// ending in `..ServiceNowConfig::default()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNowConfig {
    /// `https://acme.service-now.com` (a path prefix is allowed for a proxy; no user info, query
    /// or fragment). https, or plain http only to a loopback host (127.0.0.0/8, `::1`,
    /// `localhost`: the simulator, a tunnel on this machine).
    pub instance_url: String,
    pub auth: SnAuth,
    /// Limit of each HTTP call (connect, answer and body). Default 10 s.
    pub timeout: Duration,
    /// Retries after a 429, a 5xx or a transport failure (so at most `max_retries + 1` calls).
    /// Default 4.
    pub max_retries: u32,
    /// First backoff delay; it doubles per retry, with jitter. Default 200 ms.
    pub retry_base_delay: Duration,
    /// Largest backoff delay. Default 5 s.
    pub retry_max_delay: Duration,
    /// Largest wait a 429's `Retry-After` can impose. Default 30 s.
    pub max_retry_after: Duration,
    /// `sysparm_limit` of each page of a query. Default 100.
    pub page_size: u32,
    /// Pages one query may follow through `Link: rel="next"` before it fails. Default 50.
    pub max_pages: u32,
}

impl Default for ServiceNowConfig {
    fn default() -> Self {
        ServiceNowConfig {
            instance_url: String::new(),
            auth: SnAuth::default(),
            timeout: Duration::from_secs(10),
            max_retries: 4,
            retry_base_delay: Duration::from_millis(200),
            retry_max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            page_size: 100,
            max_pages: 50,
        }
    }
}

impl ServiceNowConfig {
    /// The defaults with this instance and credentials.
    pub fn new(instance_url: impl Into<String>, auth: SnAuth) -> Self {
        ServiceNowConfig { instance_url: instance_url.into(), auth, ..ServiceNowConfig::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = ServiceNowConfig::new("https://x", SnAuth::Basic { user: "u".into(), password: "hunter2".into() });
        let s = format!("{c:?}");
        assert!(s.contains("\"u\"") && !s.contains("hunter2"), "{s}");
        let o = SnAuth::OAuthClientCredentials { client_id: "id".into(), client_secret: "s3cr3t".into() };
        assert!(!format!("{o:?}").contains("s3cr3t"));
        assert_eq!(SnAuth::default().kind(), "basic");
    }
}
