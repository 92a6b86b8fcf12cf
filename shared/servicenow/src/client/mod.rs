//! [`Client`]: the Table API over HTTP, with authentication, retries, paging and checked writes.
//!
//! This file holds the client itself: its configuration checks and the URLs it calls. The
//! operations are in `table.rs` (Table API) and `change_api.rs` (Change Management API); one
//! call's transport (retries, checked writes, paging) in `transport.rs`; credentials in
//! `auth.rs`; failures and their errors in `failure.rs`; name checks in `validate.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use domain::Error;
use domain::outbound::is_loopback;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use url::Url;

use crate::config::{ServiceNowConfig, SnAuth};
use crate::query::{DisplayValue, Query};
use crate::record::Record;

/// Journal fields: every write appends an entry, so a blind retry would write it twice.
const JOURNAL_FIELDS: [&str; 2] = ["work_notes", "comments"];

mod auth;
mod change_api;
mod failure;
mod table;
#[cfg(test)]
mod tests;
mod transport;
mod validate;

pub use auth::TOKEN_RENEW_MARGIN;
use auth::Token;
pub use failure::UpstreamMessage;

// The operations (`table.rs`, `change_api.rs`) and the tests reach these, and the imports above,
// through `use super::*`.
use failure::{Op, Target};
use transport::{Check, Req, Written, next_link};
use validate::{check_marker, check_sys_id, check_table};

/// A ServiceNow Table API client. Cheap to clone (one shared connection pool and token cache).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceNowConfig,
    /// The instance root, path without a trailing `/`.
    base: Url,
    http: reqwest::Client,
    /// `Basic …`, marked sensitive.
    basic: Option<HeaderValue>,
    token_url: Url,
    /// The current OAuth token; the lock also makes token requests one at a time.
    token: Mutex<Option<Arc<Token>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("instance_url", &self.instance_url())
            .field("auth", &self.inner.config.auth.kind())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

impl Client {
    /// Checks the configuration and builds the HTTP client (no call is made).
    pub fn new(config: ServiceNowConfig) -> Result<Client, Error> {
        let setup = |problem: &str| Error::internal_msg(format!("ServiceNow configuration: {problem}"));
        let mut base = Url::parse(config.instance_url.trim())
            .map_err(|_| setup("instance_url is not a valid URL (expected https://<instance>.service-now.com)"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(setup("instance_url must be an http(s) URL with a host"));
        }
        if base.scheme() == "http" && !is_loopback(&base) {
            return Err(setup(
                "instance_url (GATEHOUSE_SERVICENOW_URL) must be https (plain http only to a loopback host: \
                 127.0.0.0/8, ::1 or localhost)",
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(setup("instance_url must not carry credentials; set them in the auth settings"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(setup("instance_url must not have a query or a fragment"));
        }
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);
        let basic = match &config.auth {
            SnAuth::Basic { user, password } => {
                if user.is_empty() {
                    return Err(setup("the basic auth user is empty"));
                }
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let mut h = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| setup("the basic auth credentials cannot be sent in a header"))?;
                h.set_sensitive(true);
                Some(h)
            }
            SnAuth::OAuthClientCredentials { client_id, .. } => {
                if client_id.is_empty() {
                    return Err(setup("the OAuth client_id is empty"));
                }
                None
            }
        };
        if config.page_size == 0 || config.max_pages == 0 {
            return Err(setup("page_size and max_pages must be at least 1"));
        }
        // No redirect is followed: reqwest's default policy follows up to 10 and a 307/308 would
        // resend the body (the OAuth client secret, a record) elsewhere. `Policy::none()` "does not
        // follow any redirect" (docs.rs reqwest::redirect::Policy); `describe` reports the 3xx.
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-servicenow/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal("ServiceNow: the HTTP client could not be built", e))?;
        let token_url = join(&base, &["oauth_token.do"]);
        Ok(Client { inner: Arc::new(Inner { config, base, http, basic, token_url, token: Mutex::new(None) }) })
    }

    /// The instance URL as configured (without a trailing `/`).
    pub fn instance_url(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    /// The record's form in the ServiceNow UI: `https://instance/change_request.do?sys_id=…`.
    pub fn form_url(&self, table: &str, sys_id: &str) -> String {
        let mut u = join(&self.inner.base, &[&format!("{table}.do")]);
        u.query_pairs_mut().append_pair("sys_id", sys_id);
        u.to_string()
    }

    fn table_url(&self, table: &str, sys_id: Option<&str>) -> Url {
        let mut segs = vec!["api", "now", "table", table];
        segs.extend(sys_id);
        join(&self.inner.base, &segs)
    }

    /// A write's URL: stored values in and out, said explicitly.
    fn write_url(&self, table: &str, sys_id: Option<&str>) -> Url {
        let mut url = self.table_url(table, sys_id);
        url.query_pairs_mut()
            .append_pair("sysparm_display_value", DisplayValue::Stored.as_param())
            .append_pair("sysparm_input_display_value", "false");
        url
    }
}

fn join(base: &Url, segments: &[&str]) -> Url {
    let mut u = base.clone();
    if let Ok(mut p) = u.path_segments_mut() {
        p.pop_if_empty().extend(segments);
    }
    u
}
