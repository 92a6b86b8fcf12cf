//! GitLab CI/CD ID tokens (`id_tokens` in `.gitlab-ci.yml`): RS256 JWTs signed with the
//! simulator's own RSA key (aws-lc-rs makes it, jsonwebtoken signs), its JWKS and its OpenID
//! discovery document, as GitLab serves them.
//!
//! Claims, as documented at https://docs.gitlab.com/ci/secrets/id_token_authentication/ ("Token
//! payload"; the gitlabhq mirror's `doc/ci/secrets/id_token_authentication.md`): `iss` (the GitLab
//! URL), `sub` (`project_path:{group}/{project}:ref_type:{type}:ref:{branch}`), `aud`, `exp`, `nbf`
//! (`iat` - 5, as in the example), `iat`, `jti`, and as strings `namespace_id`, `namespace_path`,
//! `project_id`, `project_path`, `user_id`, `user_login`, `user_email`, `pipeline_id`,
//! `pipeline_source`, `job_id`, `ref`, `ref_type`, `ref_path`, `ref_protected` (`"true"` /
//! `"false"`), `sha`, `runner_environment`, `project_visibility`, `ci_config_ref_uri`,
//! `ci_config_sha`, with `runner_id` a number; and only when the job names an environment,
//! `environment`, `environment_protected`, `deployment_tier` and `environment_action`.

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::model::{Data, Job, PIPELINE_USER_EMAIL, PIPELINE_USER_ID, PIPELINE_USERNAME, namespace_path};
use crate::state::{Shared, SimState, json_response, not_found, public};
use crate::{SIM_USER_ID, SIM_USERNAME};

/// `exp` - `iat` of a token: the job's timeout, 60 minutes by default (GitLab sets the expiry to
/// the job's timeout; the documented example has `exp` - `iat` = 3600).
pub const ID_TOKEN_TTL_SECS: i64 = 3600;

/// The runner every simulated job runs on (`runner_id`, `runner_environment`).
const RUNNER_ID: u64 = 1;

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        // GitLab publishes its signing keys at /oauth/discovery/keys (the `jwks_uri` of its OpenID
        // discovery, https://gitlab.com/gitlab-org/gitlab/-/issues/333595) and at /-/jwks (which
        // also holds the CI signing key, https://gitlab.com/gitlab-org/gitlab/-/merge_requests/34249).
        .route("/oauth/discovery/keys", get(jwks))
        .route("/-/jwks", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/_sim/id_token", get(control_id_token))
}

/// The RSA signing key (2048 bits), its key id (the RFC 7638 thumbprint) and its public JWK.
pub(crate) struct SigningKey {
    encoding: EncodingKey,
    pub kid: String,
    pub jwk: Value,
}

impl SigningKey {
    pub fn generate() -> Result<SigningKey, String> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| "generating the RSA key failed".to_string())?;
        let pkcs8 = pair.as_der().map_err(|_| "encoding the RSA key failed".to_string())?;
        // jsonwebtoken's RSA signer wants PKCS#1; its PEM reader takes the PKCS#8 document apart.
        let body = STANDARD.encode(pkcs8.as_ref());
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("reading the RSA key: {e}"))?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638: SHA-256 of the required members in lexicographic order.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()).as_ref());
        let jwk = json!({"kty": "RSA", "kid": kid, "e": e, "n": n, "use": "sig", "alg": "RS256"});
        Ok(SigningKey { encoding, kid, jwk })
    }
}

impl SimState {
    pub fn signing_key(&self) -> Result<&SigningKey, String> {
        self.key.get_or_init(SigningKey::generate).as_ref().map_err(Clone::clone)
    }

    pub fn jwks(&self) -> Result<Value, String> {
        Ok(json!({ "keys": [self.signing_key()?.jwk.clone()] }))
    }

    /// GitLab's discovery document (https://docs.gitlab.com/integration/openid_connect_provider/
    /// "Settings discovery"): `issuer` the instance URL and `jwks_uri` `/oauth/discovery/keys` as
    /// gitlab.com publishes them (https://logto.io/oauth-providers-explorer/gitlab); the other
    /// endpoints are doorkeeper-openid_connect's, listed for shape only (the simulator serves none).
    pub fn discovery(&self) -> Value {
        let base = &self.base;
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/oauth/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "introspection_endpoint": format!("{base}/oauth/introspect"),
            "userinfo_endpoint": format!("{base}/oauth/userinfo"),
            "jwks_uri": format!("{base}/oauth/discovery/keys"),
            "scopes_supported": ["api", "read_api", "read_user", "read_repository", "openid", "profile", "email"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claim_types_supported": ["normal"],
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "sub_legacy", "name", "nickname", "preferred_username", "email",
                "email_verified", "website", "profile", "picture", "groups", "groups_direct",
                "https://gitlab.org/claims/groups/owner", "https://gitlab.org/claims/groups/maintainer",
                "https://gitlab.org/claims/groups/developer",
            ],
        })
    }

    /// The ID token of job `job_id` (any project) for `aud` (one value: a string claim; several:
    /// an array), expiring `exp_secs` from now (negative: already expired). `Ok(None)`: no such job.
    pub fn id_token(&self, job_id: u64, aud: &[String], exp_secs: i64) -> Result<Option<String>, String> {
        let claims = {
            let mut data = self.data();
            let Some(job) = data.job_by_id(job_id) else { return Ok(None) };
            let (project, pipeline) = (job.project_id, job.pipeline_id);
            let path = data.projects.get(&project).cloned().unwrap_or_else(|| format!("group/project-{project}"));
            let namespace_id = data.namespace_id(&path);
            let Some(job) = data.job_by_id(job_id) else { return Ok(None) };
            claims(self, &data, job, &path, namespace_id, aud, exp_secs)
                .ok_or(format!("pipeline {pipeline} is gone"))?
        };
        let key = self.signing_key()?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).map(Some).map_err(|e| format!("signing: {e}"))
    }
}

fn claims(
    st: &SimState,
    data: &Data,
    job: &Job,
    path: &str,
    namespace_id: u64,
    aud: &[String],
    exp_secs: i64,
) -> Option<Value> {
    let pipeline = data.pipelines.get(&(job.project_id, job.pipeline_id))?;
    let now = Timestamp::now().as_second();
    let exp = now.saturating_add(exp_secs);
    // An expired token was issued a while before it expired.
    let iat = if exp_secs > 0 { now } else { exp - ID_TOKEN_TTL_SECS };
    let (user_id, user_login, user_email) = match job.user.as_deref() {
        Some(SIM_USERNAME) => (SIM_USER_ID, SIM_USERNAME.to_string(), format!("{SIM_USERNAME}@example.com")),
        Some(other) => (4300 + other.len() as u64, other.to_string(), format!("{other}@example.com")),
        None => (PIPELINE_USER_ID, PIPELINE_USERNAME.to_string(), PIPELINE_USER_EMAIL.to_string()),
    };
    let ref_ = &pipeline.ref_;
    let (ref_type, ref_path) = ("branch", format!("refs/heads/{ref_}"));
    let host = st.base.split_once("://").map_or(st.base.as_str(), |(_, h)| h);
    let mut c = Map::new();
    let mut s = |k: &str, v: String| {
        c.insert(k.to_string(), Value::String(v));
    };
    s("namespace_id", namespace_id.to_string());
    s("namespace_path", namespace_path(path).to_string());
    s("project_id", job.project_id.to_string());
    s("project_path", path.to_string());
    s("user_id", user_id.to_string());
    s("user_login", user_login);
    s("user_email", user_email);
    s("pipeline_id", pipeline.id.to_string());
    s("pipeline_source", "push".into());
    s("job_id", job.id.to_string());
    s("ref", ref_.clone());
    s("ref_type", ref_type.into());
    s("ref_path", ref_path.clone());
    s("ref_protected", pipeline.protected.to_string());
    if let Some(env) = &job.environment {
        let protected = data.protected_environments.contains(&(job.project_id, env.clone()));
        s("environment", env.clone());
        s("environment_protected", protected.to_string());
        s("deployment_tier", deployment_tier(env).into());
        s("environment_action", "start".into());
    }
    s("runner_environment", "self-hosted".into());
    s("sha", pipeline.sha.clone());
    s("project_visibility", "private".into());
    s("ci_config_ref_uri", format!("{host}/{path}//.gitlab-ci.yml@{ref_path}"));
    s("ci_config_sha", pipeline.sha.clone());
    s("jti", jti());
    s("iss", st.base.clone());
    s("sub", format!("project_path:{path}:ref_type:{ref_type}:ref:{ref_}"));
    c.insert("runner_id".into(), json!(RUNNER_ID));
    c.insert("iat".into(), json!(iat));
    c.insert("nbf".into(), json!(iat - 5));
    c.insert("exp".into(), json!(exp));
    c.insert("aud".into(), if aud.len() == 1 { json!(aud[0]) } else { json!(aud) });
    Some(Value::Object(c))
}

/// GitLab's guess of an environment's tier from its name, in its order (development, testing,
/// staging, production, else other; https://gitlab.com/gitlab-org/gitlab/-/merge_requests/55723,
/// https://gitlab.com/gitlab-org/gitlab/-/issues/377916).
pub(crate) fn deployment_tier(environment: &str) -> &'static str {
    let name = environment.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if any(&["dev", "review", "trunk"]) {
        "development"
    } else if any(&["test", "tst", "int", "accept", "acpt", "qa", "qc", "control", "quality"]) {
        "testing"
    } else if any(&["stag", "stg", "model", "modl", "pre", "demo", "non"]) {
        "staging"
    } else if any(&["prod", "prd", "live"]) {
        "production"
    } else {
        "other"
    }
}

/// A random UUID (version 4), as GitLab's `jti`.
fn jti() -> String {
    let mut b = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        b = Timestamp::now().as_nanosecond().to_be_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

async fn jwks(State(st): Shared) -> Response {
    public(&st, "oauth.keys", |st| match st.jwks() {
        Ok(keys) => json_response(StatusCode::OK, keys),
        Err(e) => json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({ "message": e })),
    })
    .await
}

async fn discovery(State(st): Shared) -> Response {
    public(&st, "openid.configuration", |st| json_response(StatusCode::OK, st.discovery())).await
}

/// `GET /_sim/id_token?job_id=N&aud=A[&aud=B][&exp_secs=S]` → `{"token"}`; 404 for an unknown
/// job; 400 without `job_id` or `aud` (GitLab requires `aud` in `id_tokens`,
/// https://docs.gitlab.com/ci/yaml/#id_tokens).
async fn control_id_token(State(st): Shared, RawQuery(query): RawQuery) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let control_error = |e: &str| json_response(StatusCode::BAD_REQUEST, json!({ "error": e }));
    let Some(job_id) = get("job_id").and_then(|v| v.parse::<u64>().ok()) else {
        return control_error("job_id (a number) is missing");
    };
    let aud: Vec<String> = pairs.iter().filter(|(k, _)| k == "aud" || k == "aud[]").map(|(_, v)| v.clone()).collect();
    if aud.is_empty() {
        return control_error("aud is missing");
    }
    let exp_secs = match get("exp_secs").map(str::parse::<i64>) {
        None => ID_TOKEN_TTL_SECS,
        Some(Ok(s)) => s,
        Some(Err(_)) => return control_error("exp_secs is not a number of seconds"),
    };
    match st.id_token(job_id, &aud, exp_secs) {
        Ok(Some(token)) => json_response(StatusCode::OK, json!({ "token": token })),
        Ok(None) => not_found(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": e }))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_guessed_from_names_as_gitlab_does() {
        for (name, tier) in [
            ("production", "production"),
            ("prod-eu", "production"),
            ("staging", "staging"),
            ("review/feature-1", "development"),
            ("qa", "testing"),
            ("customer-portal", "other"),
        ] {
            assert_eq!(deployment_tier(name), tier, "{name}");
        }
    }

    #[test]
    fn jti_is_a_uuid_v4() {
        let (a, b) = (jti(), jti());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
