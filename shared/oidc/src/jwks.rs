//! The provider's signing keys and the ID token's signature: the key set (`jwks_uri`) fetched and
//! kept for [`JWKS_TTL`], refetched once for an unknown `kid` (at most once per
//! [`JWKS_REFETCH_INTERVAL`]), and the ID token's `alg` and key checked before its claims
//! (`claims.rs`).

use super::*;
use crate::claims::{Selected, refused, select_key, verify_claims};
use crate::discovery::Discovery;

#[derive(Default)]
pub(crate) struct KeyCache {
    /// The `jwks_uri` the keys came from: a new one (after discovery changed) fetches again.
    uri: Option<Url>,
    keys: Vec<Jwk>,
    refresh_at: Option<Instant>,
    /// The last refetch caused by an unknown `kid`.
    last_forced: Option<Instant>,
}

impl OidcClient {
    async fn fetch_keys(&self, uri: &Url) -> Result<Vec<Jwk>> {
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<Value>,
        }
        let set: KeySet = self.get_json(uri, "the key set (jwks_uri)").await?;
        // Key by key: one the library does not know (another kty, an encryption alg) is skipped
        // rather than failing the whole set.
        let keys: Vec<Jwk> = set.keys.into_iter().filter_map(|k| serde_json::from_value::<Jwk>(k).ok()).collect();
        tracing::debug!(issuer = %self.issuer, keys = keys.len(), "OpenID provider keys fetched");
        Ok(keys)
    }

    /// The key to verify a token signed with `alg` under `kid`.
    async fn key_for(&self, discovery: &Discovery, kid: Option<&str>, alg: Algorithm) -> Result<Jwk> {
        let mut cache = self.keys.lock().await;
        let mut fetched_now = false;
        let stale =
            cache.uri.as_ref() != Some(&discovery.jwks_uri) || cache.refresh_at.is_none_or(|t| Instant::now() >= t);
        if stale {
            match self.fetch_keys(&discovery.jwks_uri).await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.uri = Some(discovery.jwks_uri.clone());
                    cache.refresh_at = Some(Instant::now() + JWKS_TTL);
                    fetched_now = true;
                }
                Err(err) if cache.uri.as_ref() == Some(&discovery.jwks_uri) => {
                    tracing::warn!(error = %err.chain(), "refreshing the OpenID provider's keys failed; the previous ones are used");
                    cache.refresh_at = Some(Instant::now() + RETRY_AFTER_FAILED_REFRESH);
                }
                Err(err) => return Err(err),
            }
        }
        match select_key(&cache.keys, kid, alg) {
            Selected::Key(k) => return Ok(k.clone()),
            Selected::Refused(why) => return Err(refused(why)),
            Selected::Missing => {}
        }
        // An unknown kid: the provider may have rotated its keys. Fetch again, unless the keys were
        // fetched for this very call or an unknown kid already caused a fetch a moment ago.
        let may_refetch = !fetched_now && cache.last_forced.is_none_or(|t| t.elapsed() >= JWKS_REFETCH_INTERVAL);
        if may_refetch {
            cache.last_forced = Some(Instant::now());
            let keys = self.fetch_keys(&discovery.jwks_uri).await?;
            cache.keys = keys;
            cache.uri = Some(discovery.jwks_uri.clone());
            cache.refresh_at = Some(Instant::now() + JWKS_TTL);
            match select_key(&cache.keys, kid, alg) {
                Selected::Key(k) => return Ok(k.clone()),
                Selected::Refused(why) => return Err(refused(why)),
                Selected::Missing => {}
            }
        }
        Err(refused(match kid {
            Some(kid) => format!("the provider's key set has no key \"{}\" for {alg:?}", clip(kid, 100)),
            None => format!("the token names no key (kid) and the provider's key set has no single {alg:?} key"),
        }))
    }

    pub(crate) async fn verify_id_token(&self, d: &Discovery, id_token: &str, nonce: &str) -> Result<VerifiedIdentity> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| {
            refused("it is not a well-formed signed JWT with a supported alg (alg none is never accepted)".into())
        })?;
        let alg = header.alg;
        if !ALLOWED_ALGORITHMS.contains(&alg) {
            return Err(refused(format!(
                "its alg {alg:?} is not accepted (only asymmetric signatures: RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
            )));
        }
        let jwk = self.key_for(d, header.kid.as_deref(), alg).await?;
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| refused("the provider's key for it could not be read".into()))?;
        verify_claims(id_token, &key, alg, &self.issuer, &self.client_id, nonce, unix_now())
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
