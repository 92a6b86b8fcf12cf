//! Keystone v3: the token request body and what Gatehouse keeps of the answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clouds::{AppCredentialRef, CloudConfig, Credentials, DomainRef, ProjectRef, UserRef};
use crate::endpoint::{self, CatalogService, Endpoint, Service};
use crate::microversion::Negotiated;
use crate::outbound;

/// Renew a token this long before Keystone says it expires.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

fn domain(d: &DomainRef) -> Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

fn user(u: &UserRef) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    match u {
        UserRef::Id(id) => {
            m.insert("id".into(), json!(id));
        }
        UserRef::Name { name, domain: d } => {
            m.insert("name".into(), json!(name));
            m.insert("domain".into(), domain(d));
        }
    }
    m
}

/// The body of `POST /v3/auth/tokens` for the cloud's credentials. It carries the secret: never log it.
pub fn auth_body(cloud: &CloudConfig) -> Value {
    match &cloud.credentials {
        Credentials::Password { user: u, password, project } => {
            let mut u = user(u);
            u.insert("password".into(), json!(password.expose()));
            let project = match project {
                ProjectRef::Id(id) => json!({ "id": id }),
                ProjectRef::Name { name, domain: d } => json!({ "name": name, "domain": domain(d) }),
            };
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": u}},
                "scope": {"project": project}
            }})
        }
        Credentials::ApplicationCredential { credential, secret } => {
            let mut ac = serde_json::Map::new();
            match credential {
                AppCredentialRef::Id(id) => {
                    ac.insert("id".into(), json!(id));
                }
                AppCredentialRef::Name { name, user: u } => {
                    ac.insert("name".into(), json!(name));
                    ac.insert("user".into(), Value::Object(user(u)));
                }
            }
            ac.insert("secret".into(), json!(secret.expose()));
            json!({"auth": {"identity": {
                "methods": ["application_credential"],
                "application_credential": ac
            }}})
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    pub token: TokenBody,
}

#[derive(Debug, Deserialize)]
pub struct TokenBody {
    pub expires_at: Timestamp,
    #[serde(default)]
    pub issued_at: Option<Timestamp>,
    #[serde(default)]
    pub catalog: Option<Vec<CatalogService>>,
}

/// A token and the endpoints of its catalog.
pub struct Session {
    /// `X-Auth-Token`, marked sensitive so that no `Debug` shows it.
    pub token: HeaderValue,
    /// When to stop using the token (60 s before it expires, measured on our clock).
    pub renew_at: Instant,
    /// Per service, the endpoint or the sentence saying why there is none.
    pub endpoints: HashMap<Service, Result<Endpoint, String>>,
    /// The compute microversion negotiated for this token's compute endpoint, once read: a new
    /// token (an hour later, or after a 401) reads the version document again, which notices an
    /// upgraded cloud. The lock makes that one read at a time.
    pub compute: tokio::sync::Mutex<Option<Negotiated>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("renew_at", &self.renew_at)
            .field("endpoints", &self.endpoints)
            .field("compute", &self.compute)
            .finish()
    }
}

impl Session {
    /// `requested_at` is when the token was asked for: the token's lifetime (expiry minus issue
    /// time, by Keystone's clock) counts from there, so clock skew does not matter.
    pub fn new(cloud: &CloudConfig, token: HeaderValue, body: &TokenBody, requested_at: Instant) -> Session {
        let issued = body.issued_at.unwrap_or_else(Timestamp::now);
        let lifetime = body.expires_at.duration_since(issued);
        let lifetime = Duration::try_from(lifetime).unwrap_or(Duration::ZERO);
        let renew_at = requested_at + lifetime.saturating_sub(EXPIRY_MARGIN);
        let catalog = body.catalog.as_deref().unwrap_or_default();
        let region = cloud.region_name.as_deref();
        let endpoints = [Service::Compute, Service::Image, Service::Network]
            .into_iter()
            .map(|service| {
                let found = match endpoint::select(catalog, service, cloud.interface, region) {
                    None => Err(match region {
                        Some(r) => {
                            format!("has no {} endpoint in region \"{r}\" in the service catalog", cloud.interface)
                        }
                        None => format!("has no {} endpoint in the service catalog", cloud.interface),
                    }),
                    Some(url) => endpoint::normalise(service, url)
                        .map_err(|_| "has an invalid endpoint URL in the service catalog".to_string())
                        .and_then(|e| {
                            if outbound::scheme_allowed(&e.api) {
                                Ok(e)
                            } else {
                                Err(format!("has an endpoint in the service catalog that {}", outbound::HTTPS_RULE))
                            }
                        }),
                };
                (service, found)
            })
            .collect();
        Session { token, renew_at, endpoints, compute: tokio::sync::Mutex::new(None) }
    }

    pub fn fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clouds::CloudsFile;

    #[test]
    fn password_and_application_credential_bodies() {
        let clouds = CloudsFile::parse(
            r#"
clouds:
  p:
    auth: {auth_url: "https://k/v3", username: u, password: pw, user_domain_name: Default, project_id: p1}
  a:
    auth_type: v3applicationcredential
    auth: {auth_url: "https://k/v3", application_credential_id: ac, application_credential_secret: s}
"#,
        )
        .unwrap();
        assert_eq!(
            auth_body(clouds.get("p").unwrap()),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {"name": "u", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"id": "p1"}}
            }})
        );
        assert_eq!(
            auth_body(clouds.get("a").unwrap()),
            json!({"auth": {"identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": "ac", "secret": "s"}
            }}})
        );
    }

    #[test]
    fn tokens_are_renewed_a_minute_before_they_expire() {
        let clouds = CloudsFile::parse(
            "clouds:\n  c:\n    auth: {auth_url: 'https://k', user_id: u, password: p, project_id: x}\n",
        )
        .unwrap();
        let body: TokenAnswer = serde_json::from_value(json!({"token": {
            "issued_at": "2030-01-01T10:00:00.000000Z",
            "expires_at": "2030-01-01T11:00:00.000000Z",
            "catalog": []
        }}))
        .unwrap();
        let now = Instant::now();
        let s = Session::new(clouds.get("c").unwrap(), HeaderValue::from_static("t"), &body.token, now);
        assert_eq!(s.renew_at - now, Duration::from_secs(3540));
        assert!(s.fresh());
        assert!(s.endpoints[&Service::Compute].as_ref().unwrap_err().contains("no public endpoint"));
    }

    #[test]
    fn catalog_endpoints_must_be_https_except_on_loopback() {
        let clouds = CloudsFile::parse(
            "clouds:\n  c:\n    auth: {auth_url: 'https://k', user_id: u, password: p, project_id: x}\n",
        )
        .unwrap();
        let body: TokenAnswer = serde_json::from_value(json!({"token": {
            "expires_at": "2030-01-01T11:00:00.000000Z",
            "catalog": [
                {"type": "compute", "endpoints": [{"interface": "public", "url": "http://nova.example.com/v2.1"}]},
                {"type": "image", "endpoints": [{"interface": "public", "url": "http://127.0.0.1:9292"}]},
                {"type": "network", "endpoints": [{"interface": "public", "url": "https://neutron.example.com"}]}
            ]
        }}))
        .unwrap();
        let s = Session::new(clouds.get("c").unwrap(), HeaderValue::from_static("t"), &body.token, Instant::now());
        let compute = s.endpoints[&Service::Compute].as_ref().unwrap_err();
        assert!(compute.contains("must be https") && compute.contains("loopback"), "{compute}");
        assert_eq!(s.endpoints[&Service::Image].as_ref().unwrap().api.as_str(), "http://127.0.0.1:9292/v2");
        assert_eq!(s.endpoints[&Service::Network].as_ref().unwrap().api.as_str(), "https://neutron.example.com/v2.0");
    }
}
