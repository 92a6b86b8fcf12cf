//! Discovery: `GET {issuer}/.well-known/openid-configuration`, fetched on first use and kept for
//! [`DISCOVERY_TTL`], checked before anything is sent to the provider: the issuer identical to the
//! configured one (OpenID Connect Discovery 1.0 §4.3), every endpoint https (plain http only to a
//! loopback host), PKCE S256, and a client authentication implemented here.

use super::*;

/// How the client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-urlencoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    Post,
}

/// What is used of a discovery document, checked.
#[derive(Debug)]
pub(crate) struct Discovery {
    pub(crate) authorization_endpoint: Url,
    pub(crate) token_endpoint: Url,
    pub(crate) jwks_uri: Url,
    pub(crate) client_auth: ClientAuth,
}

pub(crate) struct CachedDiscovery {
    doc: Arc<Discovery>,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    code_challenge_methods_supported: Option<Vec<String>>,
}

impl OidcClient {
    /// Fetches and checks the discovery document now (for a start-up check), even if one is cached.
    pub async fn check_discovery(&self) -> Result<()> {
        let doc = Arc::new(self.fetch_discovery().await?);
        *self.discovery.lock().await = Some(CachedDiscovery { doc, refresh_at: Instant::now() + DISCOVERY_TTL });
        Ok(())
    }

    pub(crate) async fn discovery(&self) -> Result<Arc<Discovery>> {
        let mut cached = self.discovery.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.doc.clone());
        }
        match self.fetch_discovery().await {
            Ok(doc) => {
                let doc = Arc::new(doc);
                *cached = Some(CachedDiscovery { doc: doc.clone(), refresh_at: Instant::now() + DISCOVERY_TTL });
                Ok(doc)
            }
            Err(err) => match cached.as_mut() {
                Some(c) => {
                    tracing::warn!(error = %err.chain(), "refreshing the OpenID provider's discovery document failed; the previous one is used");
                    c.refresh_at = Instant::now() + RETRY_AFTER_FAILED_REFRESH;
                    Ok(c.doc.clone())
                }
                None => Err(err),
            },
        }
    }

    async fn fetch_discovery(&self) -> Result<Discovery> {
        let doc: DiscoveryDocument = self.get_json(&self.discovery_url, "the discovery document").await?;
        // OpenID Connect Discovery 1.0 §4.3: the issuer "MUST be identical" to the configured one,
        // else the document must not be used (a provider may not speak for another issuer).
        if doc.issuer != self.issuer {
            return Err(Error::upstream(
                SYSTEM,
                format!(
                    "the discovery document at {} names the issuer \"{}\", not \"{}\" as configured in {ISSUER_SETTING}; \
                     they must be identical (OpenID Connect Discovery 1.0 §4.3)",
                    self.discovery_url,
                    clip(&doc.issuer, 200),
                    self.issuer
                ),
            ));
        }
        let endpoint = |name: &str, value: Option<String>| -> Result<Url> {
            let value = value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                Error::upstream(SYSTEM, format!("the discovery document at {} has no {name}", self.discovery_url))
            })?;
            let url = Url::parse(value.trim()).map_err(|_| {
                Error::upstream(
                    SYSTEM,
                    format!("the discovery document's {name} \"{}\" is not a URL", clip(&value, 200)),
                )
            })?;
            if !scheme_allowed(&url) {
                return Err(Error::upstream(SYSTEM, format!("the discovery document's {name} \"{url}\" {HTTPS_RULE}")));
            }
            if url.fragment().is_some() {
                return Err(Error::upstream(SYSTEM, format!("the discovery document's {name} has a fragment")));
            }
            Ok(url)
        };
        let authorization_endpoint = endpoint("authorization_endpoint", doc.authorization_endpoint)?;
        let token_endpoint = endpoint("token_endpoint", doc.token_endpoint)?;
        let jwks_uri = endpoint("jwks_uri", doc.jwks_uri)?;
        if let Some(methods) = &doc.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(Error::upstream(
                SYSTEM,
                "the provider does not list PKCE S256 in code_challenge_methods_supported; sign-in requires it",
            ));
        }
        // Discovery §3: absent, the default is client_secret_basic.
        let client_auth = match &doc.token_endpoint_auth_methods_supported {
            None => ClientAuth::Basic,
            Some(methods) if methods.iter().any(|m| m == "client_secret_basic") => ClientAuth::Basic,
            Some(methods) if methods.iter().any(|m| m == "client_secret_post") => ClientAuth::Post,
            Some(_) => {
                return Err(Error::upstream(
                    SYSTEM,
                    "the provider supports neither client_secret_basic nor client_secret_post \
                     (token_endpoint_auth_methods_supported); no other client authentication is implemented",
                ));
            }
        };
        tracing::debug!(issuer = %self.issuer, ?client_auth, "OpenID provider discovered");
        Ok(Discovery { authorization_endpoint, token_endpoint, jwks_uri, client_auth })
    }
}
