//! Keystone v3 at `/identity`: version discovery and `POST /v3/auth/tokens`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::{Shared, SimState, TokenRecord, demo, json_response, random_string, samples};

const ROLE_MEMBER_ID: &str = "51cc68287d524c759f47c811e6463340";
const ROLE_READER_ID: &str = "7d2d1a4c3e9b4f0a8c6e5b4a3f2e1d0c";
const APP_CREDENTIAL_NAME: &str = "gatehouse";

/// `GET /identity`: the versions list. Keystone answers it with 300 Multiple Choices.
pub(crate) async fn versions(State(st): Shared, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("identity", "identity.versions", &headers, false).await {
        return resp;
    }
    let identity = format!("{}/identity", st.base);
    let body = samples::rewrite(samples::KEYSTONE_VERSIONS, &[("http://example.com/identity", &identity)]);
    json_response(StatusCode::MULTIPLE_CHOICES, body)
}

/// `GET /identity/v3`: the v3 version document.
pub(crate) async fn version_v3(State(st): Shared, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("identity", "identity.versions", &headers, false).await {
        return resp;
    }
    let identity = format!("{}/identity", st.base);
    let body = samples::rewrite(samples::KEYSTONE_VERSION_V3, &[("http://example.com/identity", &identity)]);
    json_response(StatusCode::OK, body)
}

fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"error": {"code": 400, "message": message, "title": "Bad Request"}}))
}

/// The id Keystone gives a domain named `name` ("default" for "Default").
fn domain_id(name: &str) -> String {
    if name.eq_ignore_ascii_case("default") { "default".to_string() } else { name.to_lowercase() }
}

/// Does a request's `domain` object (`{"id": ..}` or `{"name": ..}`) name the domain `name`?
fn domain_matches(domain: &Value, name: &str) -> bool {
    if let Some(id) = domain["id"].as_str() {
        id == domain_id(name)
    } else if let Some(n) = domain["name"].as_str() {
        n == name
    } else {
        false
    }
}

fn domain_json(name: &str) -> Value {
    json!({"id": domain_id(name), "name": name})
}

/// `POST /identity/v3/auth/tokens`: password or application credential authentication.
pub(crate) async fn auth_tokens(
    State(st): Shared,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = st.gate("identity", "identity.auth", &headers, false).await {
        return resp;
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Expecting to find application/json in request body.");
    };
    let cfg = &st.config;
    let identity = &req["auth"]["identity"];
    let Some(methods) = identity["methods"].as_array() else {
        return bad_request("Invalid input for field 'identity': 'methods' is a required property");
    };
    let methods: Vec<&str> = methods.iter().filter_map(Value::as_str).collect();
    let scope = &req["auth"]["scope"];

    let method = if methods.contains(&"application_credential") {
        let ac = &identity["application_credential"];
        if !ac.is_object() {
            return bad_request("Invalid input for field 'identity': 'application_credential' is missing");
        }
        let ok = ac["id"].as_str() == Some(cfg.app_credential_id.as_str())
            && ac["secret"].as_str() == Some(cfg.app_credential_secret.as_str());
        // Keystone refuses a scope in an application credential request.
        if !ok || !scope.is_null() {
            return st.unauthorized();
        }
        "application_credential"
    } else if methods.contains(&"password") {
        let user = &identity["password"]["user"];
        if !user.is_object() {
            return bad_request("Invalid input for field 'identity': 'password' is missing");
        }
        let user_ok = match user["id"].as_str() {
            Some(id) => id == demo::USER_ID,
            None => {
                user["name"].as_str() == Some(cfg.username.as_str())
                    && domain_matches(&user["domain"], &cfg.user_domain)
            }
        };
        let password_ok = user["password"].as_str() == Some(cfg.password.as_str());
        if !(user_ok && password_ok) {
            return st.unauthorized();
        }
        "password"
    } else {
        return st.unauthorized();
    };

    let scoped = if method == "application_credential" {
        true
    } else if scope.is_null() {
        false
    } else {
        let project = &scope["project"];
        if !project.is_object() {
            // Domain and system scopes are not granted to this user.
            return st.unauthorized();
        }
        let ok = match project["id"].as_str() {
            Some(id) => id == cfg.project_id,
            None => {
                project["name"].as_str() == Some(cfg.project_name.as_str())
                    && domain_matches(&project["domain"], &cfg.project_domain)
            }
        };
        if !ok {
            return st.unauthorized();
        }
        true
    };

    let issued = jiff::Timestamp::now();
    let ttl = jiff::SignedDuration::try_from(cfg.token_ttl).unwrap_or(jiff::SignedDuration::MAX);
    let expires = issued
        .checked_add(ttl)
        .unwrap_or(jiff::Timestamp::MAX)
        .round(jiff::Unit::Microsecond)
        .unwrap_or(jiff::Timestamp::MAX);
    let with_catalog = !matches!(query.get("nocatalog"), Some(v) if v != "false" && v != "0");
    let body = token_body(&st, method, scoped, with_catalog, issued, expires);

    let token = format!("gAAAAAB{}", random_string(176));
    st.issue_token(
        token.clone(),
        TokenRecord { expires_at: expires, project_id: scoped.then(|| cfg.project_id.clone()) },
    );
    let mut resp = json_response(StatusCode::CREATED, body);
    if let Ok(v) = HeaderValue::from_str(&token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp.headers_mut().insert("vary", HeaderValue::from_static("X-Auth-Token"));
    resp
}

fn token_body(
    st: &SimState,
    method: &str,
    scoped: bool,
    with_catalog: bool,
    issued: jiff::Timestamp,
    expires: jiff::Timestamp,
) -> Value {
    let cfg = &st.config;
    let mut token = samples::TOKEN.clone();
    let Some(obj) = token.as_object_mut() else {
        return json!({});
    };
    obj.insert("methods".into(), json!([method]));
    obj.insert("expires_at".into(), json!(crate::rfc3339_micros(expires)));
    obj.insert("issued_at".into(), json!(crate::rfc3339_micros(issued)));
    obj.insert("is_domain".into(), json!(false));
    obj.insert("audit_ids".into(), json!([random_string(22)]));
    obj.insert(
        "user".into(),
        json!({
            "domain": domain_json(&cfg.user_domain),
            "id": demo::USER_ID,
            "name": cfg.username,
            "password_expires_at": null
        }),
    );
    if scoped {
        obj.insert(
            "project".into(),
            json!({
                "domain": domain_json(&cfg.project_domain),
                "id": cfg.project_id,
                "name": cfg.project_name
            }),
        );
        obj.insert(
            "roles".into(),
            json!([
                {"id": ROLE_MEMBER_ID, "name": "member"},
                {"id": ROLE_READER_ID, "name": "reader"}
            ]),
        );
        if with_catalog {
            obj.insert("catalog".into(), catalog(st));
        } else {
            obj.remove("catalog");
        }
    } else {
        obj.remove("project");
        obj.remove("roles");
        obj.remove("catalog");
    }
    if method == "application_credential" {
        obj.insert(
            "application_credential".into(),
            json!({
                "id": cfg.app_credential_id,
                "name": APP_CREDENTIAL_NAME,
                "restricted": true
            }),
        );
    }
    json!({ "token": token })
}

/// The service catalog: each service has public and internal endpoints in the configured region
/// that work, an admin endpoint there that is not served (404), and a full set of endpoints in
/// "OtherRegion" that are not served either. The unusable ones come first, so a client that
/// ignores the region or the interface fails.
fn catalog(st: &SimState) -> Value {
    let base = &st.base;
    let region = &st.config.region;
    let services = [
        ("identity", "keystone", "identity".to_string()),
        ("compute", "nova", format!("compute/v2.1/{}", st.config.project_id)),
        ("image", "glance", "image".to_string()),
        ("network", "neutron", "network".to_string()),
    ];
    let mut catalog = Vec::new();
    for (i, (kind, name, path)) in services.iter().enumerate() {
        let endpoints = [
            ("OtherRegion", "public", format!("{base}/other-region/{path}")),
            ("OtherRegion", "internal", format!("{base}/other-region/{path}")),
            ("OtherRegion", "admin", format!("{base}/other-region/{path}")),
            (region.as_str(), "admin", format!("{base}/admin-interface-not-served/{path}")),
            (region.as_str(), "internal", format!("{base}/{path}")),
            (region.as_str(), "public", format!("{base}/{path}")),
        ];
        let endpoints: Vec<Value> = endpoints
            .iter()
            .enumerate()
            .map(|(j, (region, interface, url))| {
                json!({
                    "region_id": region,
                    "url": url,
                    "region": region,
                    "interface": interface,
                    "id": fixed_id(0xe9d0 + i as u64, j as u64)
                })
            })
            .collect();
        catalog.push(json!({
            "endpoints": endpoints,
            "type": kind,
            "id": fixed_id(0x5e60 + i as u64, 0),
            "name": name
        }));
    }
    Value::Array(catalog)
}

/// A stable 32-hex id.
fn fixed_id(a: u64, b: u64) -> String {
    format!("{:016x}{:016x}", a.wrapping_mul(0x9e37_79b9_7f4a_7c15), (b + 1).wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_match_by_name_or_id() {
        assert!(domain_matches(&json!({"name": "Default"}), "Default"));
        assert!(domain_matches(&json!({"id": "default"}), "Default"));
        assert!(!domain_matches(&json!({"id": "Default"}), "Default"));
        assert!(!domain_matches(&json!({}), "Default"));
        assert_eq!(fixed_id(1, 2).len(), 32);
    }
}
