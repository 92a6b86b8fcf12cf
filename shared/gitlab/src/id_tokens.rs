//! GitLab CI/CD ID tokens as a CI job's identity: the adapter of [`domain::changes::CiIdentity`]
//! (DESIGN.md, "Trust and identity": CI identity comes from the ID token, not the body).
//!
//! A job configured with `id_tokens` (`aud` = `GATEHOUSE_CI_AUDIENCE`) gets a JWT signed by its
//! GitLab instance (https://docs.gitlab.com/ci/secrets/id_token_authentication/, "Token payload").
//! [`GitLabIdTokens::verify`] accepts it only when:
//!
//! - the header's `alg` is an asymmetric one ([`ALLOWED_ALGORITHMS`]; never `none` or HS*), and the
//!   header names a `kid`;
//! - the key is the one of that `kid` in the instance's JWKS, `{gitlab_url}/oauth/discovery/keys`
//!   (the `jwks_uri` of GitLab's OpenID discovery, which lists the CI signing key since
//!   https://gitlab.com/gitlab-org/gitlab/-/merge_requests/73216), and fits the `alg` (a `jku`,
//!   `jwk` or `x5u` in the header is ignored). The keys are kept for [`JWKS_TTL`]; an unknown `kid`
//!   fetches them again, at most once per [`JWKS_REFETCH_INTERVAL`];
//! - the signature verifies (jsonwebtoken does the cryptography), `iss` is the GitLab URL exactly
//!   (without a trailing slash, as GitLab writes it), `aud` names the audience, `exp` has not passed
//!   and `nbf` has (both with [`LEEWAY`]);
//! - the claims Gatehouse needs are there and well formed. GitLab sends them as strings:
//!   `project_id`, `pipeline_id` and `job_id` (decimal numbers), `project_path`, `sha` (40 hex
//!   digits), `ref`, `ref_protected` (`"true"` / `"false"`) and, for a job that names an
//!   environment, `environment`; and, to be recorded, `user_login` and `user_email` (who the job
//!   runs as).
//!
//! A token that fails any of this is `Error::Unauthorized` (401 at the edge); why is logged (never
//! the token). The keys not being fetchable (GitLab down, a non-2xx answer, a redirect, which is
//! not followed, or a body that is no key set) is `Error::Upstream { system: "GitLab" }`; with keys
//! already cached, a failed scheduled refresh keeps using them for another minute.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::changes::{CiIdentity, CiJobClaims};
use domain::{Error, Result};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::is_loopback;
use oidc::key_fits;

/// The `system` of upstream errors.
const SYSTEM: &str = "GitLab";
/// Where GitLab publishes the keys that sign ID tokens, below the instance URL.
pub const JWKS_PATH: &str = "/oauth/discovery/keys";
/// How long fetched keys are used before they are fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` fetches the keys again at most this often.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed scheduled refresh, the previous keys are used this long before trying again.
const RETRY_AFTER_FAILED_REFRESH: Duration = Duration::from_secs(60);
/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// The largest key set read.
const MAX_BODY: usize = 512 * 1024;
/// A longer "token" is refused without being parsed (GitLab's are about 1–2 KiB).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The signature algorithms an ID token may use (GitLab signs with RS256): the approvers' list.
pub use oidc::ALLOWED_ALGORITHMS;

/// Verifies the ID tokens of one GitLab instance. Share it behind an `Arc`: the keys are cached
/// inside.
pub struct GitLabIdTokens {
    http: reqwest::Client,
    /// The GitLab URL without a trailing slash: the `iss` every token must carry.
    issuer: String,
    audience: String,
    jwks_url: Url,
    keys: Mutex<KeyCache>,
}

impl fmt::Debug for GitLabIdTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitLabIdTokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_url", &self.jwks_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    /// When the keys are due to be fetched again; `None`: never fetched.
    refresh_at: Option<Instant>,
    /// The last fetch caused by an unknown `kid`.
    last_forced: Option<Instant>,
}

/// Why a token was refused (logged, never shown to the caller).
struct Refused {
    why: String,
    /// Expected now and then (a job retried after its token expired): logged at debug, not warn.
    routine: bool,
}

fn refused(why: impl Into<String>) -> Refused {
    Refused { why: why.into(), routine: false }
}

impl GitLabIdTokens {
    /// A verifier of ID tokens issued by the GitLab at `gitlab_url` for `audience`. No request is
    /// made yet: the keys are fetched on first use. `gitlab_url` is the instance's address
    /// (`GATEHOUSE_GITLAB_URL`; surrounding blanks and a trailing slash aside, it is the `iss`
    /// expected): https, plain http only to a loopback host (127.0.0.0/8, `::1`, `localhost`),
    /// without credentials, query or fragment. `timeout` bounds each fetch of the keys. A bad
    /// setting is a start-up error naming it.
    pub fn new(gitlab_url: &str, audience: &str, timeout: Duration) -> Result<Self> {
        let issuer = gitlab_url.trim().trim_end_matches('/');
        let setting =
            |problem: String| Error::internal_msg(format!("configuration setting GATEHOUSE_GITLAB_URL: {problem}"));
        let parsed = Url::parse(issuer).map_err(|_| setting(format!("\"{issuer}\" is not a URL")))?;
        let allowed = match parsed.scheme() {
            "https" => parsed.host().is_some(),
            "http" => is_loopback(&parsed),
            _ => false,
        };
        if !allowed {
            return Err(setting(format!(
                "\"{issuer}\" must be https (plain http only to a loopback host: 127.0.0.0/8, ::1 or localhost)"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(setting(format!("\"{issuer}\" must have no query or fragment")));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(setting("the URL must not carry credentials".to_string()));
        }
        let jwks_url =
            Url::parse(&format!("{issuer}{JWKS_PATH}")).map_err(|_| setting(format!("\"{issuer}\" is not a URL")))?;
        let audience = audience.trim();
        if audience.is_empty() {
            return Err(Error::internal_msg("configuration setting GATEHOUSE_CI_AUDIENCE: is empty"));
        }
        if timeout.is_zero() {
            return Err(Error::internal_msg("GitLab ID tokens: the timeout must be more than zero"));
        }
        // The key set is public, but a redirect would let whoever answers it choose the keys.
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-gitlab/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal("GitLab ID tokens: the HTTP client could not be built", e))?;
        Ok(GitLabIdTokens {
            http,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            jwks_url,
            keys: Mutex::new(KeyCache::default()),
        })
    }

    /// The `iss` a token must carry: the GitLab URL without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` a token must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// `{gitlab_url}/oauth/discovery/keys`.
    pub fn jwks_url(&self) -> &str {
        self.jwks_url.as_str()
    }

    /// Fetches the keys now (for a start-up check), even if some are cached.
    pub async fn check_keys(&self) -> Result<()> {
        let keys = self.fetch_keys().await?;
        let mut cache = self.keys.lock().await;
        cache.keys = keys;
        cache.refresh_at = Some(Instant::now() + JWKS_TTL);
        Ok(())
    }

    /// Verifies `id_token`; see the module documentation.
    pub async fn verify_token(&self, id_token: &str) -> Result<CiJobClaims> {
        match self.check(id_token.trim()).await {
            Ok(Ok(claims)) => {
                tracing::debug!(
                    project_id = claims.project_id,
                    pipeline_id = claims.pipeline_id,
                    job_id = claims.job_id,
                    "GitLab ID token verified"
                );
                Ok(claims)
            }
            Ok(Err(Refused { why, routine: true })) => {
                tracing::debug!(issuer = %self.issuer, reason = %why, "a GitLab ID token was refused");
                Err(Error::Unauthorized)
            }
            Ok(Err(Refused { why, routine: false })) => {
                tracing::warn!(issuer = %self.issuer, reason = %why, "a GitLab ID token was refused");
                Err(Error::Unauthorized)
            }
            Err(err) => Err(err),
        }
    }

    /// The outer error is GitLab failing; the inner one the token being refused.
    async fn check(&self, id_token: &str) -> Result<std::result::Result<CiJobClaims, Refused>> {
        if id_token.is_empty() {
            return Ok(Err(refused("it is empty")));
        }
        if id_token.len() > MAX_TOKEN_LEN {
            return Ok(Err(refused(format!("it is longer than {MAX_TOKEN_LEN} bytes"))));
        }
        let Ok(header) = jsonwebtoken::decode_header(id_token) else {
            return Ok(Err(refused(
                "it is not a well-formed signed JWT with a supported alg (alg none is never accepted)",
            )));
        };
        let alg = header.alg;
        if !ALLOWED_ALGORITHMS.contains(&alg) {
            return Ok(Err(refused(format!(
                "its alg {alg:?} is not accepted (only asymmetric signatures: RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
            ))));
        }
        let Some(kid) = header.kid.as_deref().filter(|k| !k.is_empty()) else {
            return Ok(Err(refused("its header names no key (kid)")));
        };
        let jwk = match self.key_for(kid, alg).await? {
            Ok(jwk) => jwk,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            return Ok(Err(refused(format!("GitLab's key \"{}\" could not be read", clip(kid, 100)))));
        };
        Ok(verify_claims(id_token, &key, alg, &self.issuer, &self.audience))
    }

    /// The key of `kid`, fit for `alg`: from the cache, fetched when due, and fetched again once
    /// when `kid` is unknown (GitLab may have rotated its key).
    async fn key_for(&self, kid: &str, alg: Algorithm) -> Result<std::result::Result<Jwk, Refused>> {
        let mut cache = self.keys.lock().await;
        let mut fetched_now = false;
        if cache.refresh_at.is_none_or(|t| Instant::now() >= t) {
            match self.fetch_keys().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.refresh_at = Some(Instant::now() + JWKS_TTL);
                    fetched_now = true;
                }
                Err(err) if cache.refresh_at.is_some() => {
                    tracing::warn!(error = %err.chain(), "refreshing GitLab's ID token keys failed; the previous ones are used");
                    cache.refresh_at = Some(Instant::now() + RETRY_AFTER_FAILED_REFRESH);
                }
                Err(err) => return Err(err),
            }
        }
        if let Some(found) = select_key(&cache.keys, kid, alg) {
            return Ok(found);
        }
        let may_refetch = !fetched_now && cache.last_forced.is_none_or(|t| t.elapsed() >= JWKS_REFETCH_INTERVAL);
        if may_refetch {
            cache.last_forced = Some(Instant::now());
            tracing::debug!(kid = %clip(kid, 100), "unknown key id in a GitLab ID token; fetching the keys again");
            cache.keys = self.fetch_keys().await?;
            cache.refresh_at = Some(Instant::now() + JWKS_TTL);
            if let Some(found) = select_key(&cache.keys, kid, alg) {
                return Ok(found);
            }
        }
        Ok(Err(refused(format!("GitLab's key set has no key \"{}\"", clip(kid, 100)))))
    }

    /// GETs the key set; keys jsonwebtoken does not know (another `kty`) are skipped.
    async fn fetch_keys(&self) -> Result<Vec<Jwk>> {
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<Value>,
        }
        let url = &self.jwks_url;
        let mut resp = self.http.get(url.clone()).header(ACCEPT, "application/json").send().await.map_err(|e| {
            let how = if e.is_timeout() { "did not answer in time" } else { "could not be reached" };
            Error::upstream_caused(SYSTEM, format!("GitLab's ID token keys at {url} {how}"), e)
        })?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Error::upstream(
                SYSTEM,
                format!(
                    "GitLab's ID token keys at {url} answered {status}, a redirect, which is not followed; \
                     check GATEHOUSE_GITLAB_URL"
                ),
            ));
        }
        if !status.is_success() {
            return Err(Error::upstream(SYSTEM, format!("GitLab's ID token keys at {url} answered {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            Error::upstream_caused(SYSTEM, format!("GitLab's ID token keys at {url} could not be read"), e)
        })? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::upstream(
                    SYSTEM,
                    format!("GitLab's ID token keys at {url} are larger than {MAX_BODY} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let set: KeySet = serde_json::from_slice(&body).map_err(|e| {
            Error::upstream_caused(SYSTEM, format!("GitLab's answer at {url} is not a JSON Web Key Set"), e)
        })?;
        let keys: Vec<Jwk> = set.keys.into_iter().filter_map(|k| serde_json::from_value::<Jwk>(k).ok()).collect();
        tracing::debug!(url = %url, keys = keys.len(), "GitLab's ID token keys fetched");
        Ok(keys)
    }
}

#[async_trait]
impl CiIdentity for GitLabIdTokens {
    async fn verify(&self, id_token: &str) -> Result<CiJobClaims> {
        self.verify_token(id_token).await
    }
}

// --------------------------------------------------------------------------------------------
// Pure parts
// --------------------------------------------------------------------------------------------

/// The key of `kid` among `keys`: `None` when there is none, a refusal when it cannot verify
/// `alg`.
fn select_key(keys: &[Jwk], kid: &str, alg: Algorithm) -> Option<std::result::Result<Jwk, Refused>> {
    let key = keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid))?;
    Some(match key_fits(key, alg) {
        Ok(()) => Ok(key.clone()),
        Err(why) => Err(refused(format!("GitLab's key \"{}\" {why}", clip(kid, 100)))),
    })
}

/// The claims of a GitLab ID token Gatehouse reads ("Token payload",
/// https://docs.gitlab.com/ci/secrets/id_token_authentication/); `iss`, `aud`, `exp` and `nbf` are
/// checked by jsonwebtoken's validation. Numbers may come as strings (GitLab's way) or as JSON numbers.
#[derive(Deserialize)]
struct RawClaims {
    project_id: Option<Value>,
    project_path: Option<Value>,
    pipeline_id: Option<Value>,
    job_id: Option<Value>,
    sha: Option<Value>,
    #[serde(rename = "ref")]
    ref_name: Option<Value>,
    ref_protected: Option<Value>,
    environment: Option<Value>,
    user_login: Option<Value>,
    user_email: Option<Value>,
}

/// Checks the signature and the standard claims, then reads the job's.
fn verify_claims(
    id_token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    issuer: &str,
    audience: &str,
) -> std::result::Result<CiJobClaims, Refused> {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = LEEWAY.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    let data = jsonwebtoken::decode::<RawClaims>(id_token, key, &validation).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => Refused { why: "it has expired (exp)".into(), routine: true },
        ErrorKind::ImmatureSignature => Refused { why: "it is not valid yet (nbf)".into(), routine: true },
        ErrorKind::InvalidSignature => refused("its signature does not verify with GitLab's key"),
        ErrorKind::InvalidIssuer => refused(format!("its issuer (iss) is not {issuer}")),
        ErrorKind::InvalidAudience => refused(format!("its audience (aud) does not name {audience}")),
        ErrorKind::MissingRequiredClaim(claim) => refused(format!("it has no {claim} claim")),
        ErrorKind::InvalidClaimFormat(claim) => refused(format!("its {claim} claim is malformed")),
        ErrorKind::InvalidAlgorithm => refused(format!("its alg {alg:?} does not fit GitLab's key")),
        ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            refused("it is malformed")
        }
        _ => refused("it could not be verified"),
    })?;
    job_claims(data.claims).map_err(refused)
}

/// The job's claims, each present and well formed.
fn job_claims(raw: RawClaims) -> std::result::Result<CiJobClaims, String> {
    let project_id = id_claim("project_id", raw.project_id)?;
    let pipeline_id = id_claim("pipeline_id", raw.pipeline_id)?;
    let job_id = id_claim("job_id", raw.job_id)?;
    let project_path = text_claim("project_path", raw.project_path)?;
    let ref_name = text_claim("ref", raw.ref_name)?;
    let sha = text_claim("sha", raw.sha)?;
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("its sha claim is not 40 hexadecimal digits".into());
    }
    let ref_protected = match raw.ref_protected {
        Some(Value::String(s)) if s == "true" => true,
        Some(Value::String(s)) if s == "false" => false,
        Some(Value::Bool(b)) => b,
        None | Some(Value::Null) => return Err("it has no ref_protected claim".into()),
        Some(_) => return Err("its ref_protected claim is neither \"true\" nor \"false\"".into()),
    };
    let environment = match raw.environment {
        None | Some(Value::Null) => None,
        some => Some(text_claim("environment", some)?),
    };
    // Who the job runs as is recorded, not relied on: an empty one is just unknown.
    let user = |name: &str, value: Option<Value>| match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        some => text_claim(name, some).map(Some),
    };
    let user_login = user("user_login", raw.user_login)?;
    let user_email = user("user_email", raw.user_email)?;
    Ok(CiJobClaims {
        project_id,
        project_path,
        pipeline_id,
        job_id,
        sha: sha.to_ascii_lowercase(),
        ref_name,
        ref_protected,
        environment,
        user_login,
        user_email,
    })
}

/// A positive id, as a string of decimal digits (GitLab's way) or a JSON number.
fn id_claim(name: &str, value: Option<Value>) -> std::result::Result<u64, String> {
    let parsed = match value {
        None | Some(Value::Null) => return Err(format!("it has no {name} claim")),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    parsed.filter(|n| *n > 0).ok_or_else(|| format!("its {name} claim is not a positive number"))
}

/// A non-empty string without control characters.
fn text_claim(name: &str, value: Option<Value>) -> std::result::Result<String, String> {
    match value {
        None | Some(Value::Null) => Err(format!("it has no {name} claim")),
        Some(Value::String(s)) if s.is_empty() => Err(format!("its {name} claim is empty")),
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(format!("its {name} claim holds control characters"))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("its {name} claim is not a string")),
    }
}

/// At most `max` characters of text from outside, for a log line.
fn clip(text: &str, max: usize) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(v: Value) -> RawClaims {
        serde_json::from_value(v).unwrap()
    }

    fn gitlab_claims() -> Value {
        json!({
            "project_id": "4242", "project_path": "acme/shop", "pipeline_id": "900001", "job_id": "77001",
            "sha": "af5b13261899fb2c0db30abdd0af8b07cb44fdc5", "ref": "main", "ref_protected": "true",
            "environment": "production", "namespace_id": "4240", "user_login": "root"
        })
    }

    #[test]
    fn gitlab_string_claims_are_read() {
        let c = job_claims(raw(gitlab_claims())).unwrap();
        assert_eq!(
            c,
            CiJobClaims {
                project_id: 4242,
                project_path: "acme/shop".into(),
                pipeline_id: 900001,
                job_id: 77001,
                sha: "af5b13261899fb2c0db30abdd0af8b07cb44fdc5".into(),
                ref_name: "main".into(),
                ref_protected: true,
                environment: Some("production".into()),
                user_login: Some("root".into()),
                user_email: None,
            }
        );
        let mut v = gitlab_claims();
        v["ref_protected"] = json!("false");
        v["project_id"] = json!(4242);
        v.as_object_mut().unwrap().remove("environment");
        v["sha"] = json!("AF5B13261899FB2C0DB30ABDD0AF8B07CB44FDC5");
        let c = job_claims(raw(v)).unwrap();
        assert!(!c.ref_protected);
        assert_eq!(c.project_id, 4242);
        assert_eq!(c.environment, None);
        assert_eq!(c.sha, "af5b13261899fb2c0db30abdd0af8b07cb44fdc5");
    }

    #[test]
    fn missing_or_malformed_claims_are_refused() {
        for field in ["project_id", "project_path", "pipeline_id", "job_id", "sha", "ref", "ref_protected"] {
            let mut v = gitlab_claims();
            v.as_object_mut().unwrap().remove(field);
            let why = job_claims(raw(v)).unwrap_err();
            assert!(why.contains(field), "{field}: {why}");
        }
        for (field, bad) in [
            ("project_id", json!("42x")),
            ("project_id", json!("-1")),
            ("project_id", json!("0")),
            ("project_id", json!("")),
            ("pipeline_id", json!(" 900001")),
            ("job_id", json!("99999999999999999999999")),
            ("job_id", json!(1.5)),
            ("sha", json!("af5b1326")),
            ("sha", json!("zf5b13261899fb2c0db30abdd0af8b07cb44fdc5")),
            ("ref", json!("")),
            ("ref", json!(["main"])),
            ("ref_protected", json!("yes")),
            ("ref_protected", json!("TRUE")),
            ("ref_protected", json!(1)),
            ("environment", json!("")),
            ("environment", json!(7)),
            ("project_path", json!("acme/\nshop")),
        ] {
            let mut v = gitlab_claims();
            v[field] = bad.clone();
            assert!(job_claims(raw(v)).is_err(), "{field} = {bad}");
        }
    }

    #[test]
    fn the_url_is_https_except_on_loopback_and_is_the_issuer() {
        let t = Duration::from_secs(5);
        for ok in ["https://gitlab.example.com", "http://127.0.0.1:8929", "http://[::1]:80", "http://localhost/"] {
            GitLabIdTokens::new(ok, "gatehouse", t).unwrap();
        }
        for bad in [
            "http://gitlab.example.com",
            "http://localhost.example.com",
            "ftp://localhost",
            "not a url",
            "https://gitlab.example.com/?x=1",
            "https://gitlab.example.com/#f",
            "https://user:pw@gitlab.example.com",
        ] {
            let err = GitLabIdTokens::new(bad, "gatehouse", t).unwrap_err().to_string();
            assert!(err.contains("GATEHOUSE_GITLAB_URL"), "{bad}: {err}");
        }
        let v = GitLabIdTokens::new(" https://example.com/gitlab/ ", " gatehouse ", t).unwrap();
        assert_eq!(v.issuer(), "https://example.com/gitlab");
        assert_eq!(v.audience(), "gatehouse");
        assert_eq!(v.jwks_url(), "https://example.com/gitlab/oauth/discovery/keys");
        assert!(GitLabIdTokens::new("https://gitlab.example.com", " ", t).is_err());
        assert!(GitLabIdTokens::new("https://gitlab.example.com", "gatehouse", Duration::ZERO).is_err());
    }

    #[test]
    fn keys_must_fit_the_alg() {
        let ec: Jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        let enc: Jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        let oct: Jwk = serde_json::from_value(json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})).unwrap();
        let keys = vec![ec.clone(), enc, oct];
        assert!(matches!(select_key(&keys, "ec1", Algorithm::ES256), Some(Ok(k)) if k == ec));
        assert!(matches!(select_key(&keys, "ec1", Algorithm::ES384), Some(Err(_))));
        assert!(matches!(select_key(&keys, "ec1", Algorithm::RS256), Some(Err(_))));
        assert!(matches!(select_key(&keys, "enc", Algorithm::ES256), Some(Err(_))));
        assert!(matches!(select_key(&keys, "hmac", Algorithm::ES256), Some(Err(_))));
        assert!(select_key(&keys, "nope", Algorithm::ES256).is_none());
    }
}
