//! [`Pcd`]: the clouds of clouds.yaml behind the domain's `Cloud` port.

mod images;
mod nova;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::Error;
use domain::catalog::{CloudInfo, Flavor, Image, Network};
use domain::compute::{ComputeLimits, ServerSpec, ServerState};
use domain::ports::Cloud;
use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;
use url::Url;

use crate::clouds::{CloudConfig, CloudsFile};
use crate::endpoint::{self, Endpoint, Service};
use crate::keystone::{self, Session, TokenAnswer};
use crate::microversion::{self, Ask, Negotiated};
use crate::outbound;

/// A JSON body that may depend on the compute microversion of the call.
type Body<'a> = &'a (dyn Fn(Negotiated) -> Value + Send + Sync);

/// The highest Nova microversion Gatehouse asks for; a cloud whose compute API offers less gets
/// its own maximum (see [`crate::microversion`]).
pub const NOVA_MICROVERSION: &str = "2.52";

/// A bound on pages followed, against a server whose `next` never ends (for images, the pages
/// of both ends together).
const MAX_PAGES: usize = 200;
/// How much of an upstream error message we keep (quota details, log sources).
const MAX_MESSAGE: usize = 300;

/// The OpenStack clouds of one clouds.yaml. Cheap to share behind an `Arc<dyn Cloud>`.
pub struct Pcd {
    clouds: Vec<Arc<CloudClient>>,
}

impl std::fmt::Debug for Pcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pcd").field("clouds", &self.clouds.iter().map(|c| &c.config.name).collect::<Vec<_>>()).finish()
    }
}

struct CloudClient {
    config: CloudConfig,
    /// `…/v3/auth/tokens`.
    tokens_url: Url,
    http: reqwest::Client,
    timeout: Duration,
    /// The current token; the lock also makes authentication one at a time per cloud.
    session: Mutex<Option<Arc<Session>>>,
}

impl Pcd {
    /// One HTTP client per cloud: `cacert` as clouds.yaml says, a connect timeout, `timeout` for
    /// each HTTP call (connect, answer and body), and no redirect ever followed.
    ///
    /// TLS is verified unless a cloud says `verify: false` *and* `allow_insecure_tls`
    /// (`GATEHOUSE_ALLOW_INSECURE_TLS=true`) is given: `verify: false` alone is a start-up error
    /// naming the cloud and both settings; with both, start-up warns naming the cloud. A cloud
    /// whose `auth.auth_url` is plain http to a host that is not loopback is refused too.
    pub fn new(clouds: CloudsFile, timeout: Duration, allow_insecure_tls: bool) -> Result<Pcd, Error> {
        let clouds = clouds
            .into_clouds()
            .into_iter()
            .map(|config| CloudClient::new(config, timeout, allow_insecure_tls).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pcd { clouds })
    }

    fn cloud(&self, name: &str) -> Result<&CloudClient, Error> {
        self.clouds
            .iter()
            .find(|c| c.config.name == name)
            .map(|c| c.as_ref())
            .ok_or_else(|| Error::NotFound(format!("cloud \"{name}\"")))
    }
}

impl CloudClient {
    fn new(config: CloudConfig, timeout: Duration, allow_insecure_tls: bool) -> Result<CloudClient, Error> {
        let setup = |problem: String| Error::internal_msg(format!("clouds.yaml: cloud \"{}\": {problem}", config.name));
        let tokens_url = endpoint::normalise(Service::Identity, &config.auth_url)
            .map(|e| endpoint::join(&e.api, &["auth", "tokens"]))
            .map_err(|_| setup("auth.auth_url is not a valid URL".into()))?;
        if !outbound::scheme_allowed(&tokens_url) {
            return Err(setup(format!("auth.auth_url {}", outbound::HTTPS_RULE)));
        }
        // No redirect is followed: reqwest's default policy follows up to 10 and, across hosts,
        // strips only Authorization, Cookie and the like (reqwest 0.13 src/redirect.rs,
        // `remove_sensitive_headers`), so X-Auth-Token would travel on. `Policy::none()` "does
        // not follow any redirect" (docs.rs reqwest::redirect::Policy); a 3xx then reaches
        // `status_error` as an upstream error.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-pcd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if !config.verify {
            if !allow_insecure_tls {
                return Err(setup(
                    "verify: false needs GATEHOUSE_ALLOW_INSECURE_TLS=true as well; without both, TLS certificates \
                     are verified, so remove verify: false (or give the cloud's CA as cacert)"
                        .into(),
                ));
            }
            tracing::warn!(
                cloud = %config.name,
                "TLS certificates of PCD cloud \"{}\" are NOT verified (clouds.yaml verify: false, GATEHOUSE_ALLOW_INSECURE_TLS=true)",
                config.name
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        } else if let Some(path) = &config.cacert {
            let pem =
                std::fs::read(path).map_err(|e| setup(format!("cacert {} could not be read: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(format!("cacert {} is not a PEM bundle: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(setup(format!("cacert {} holds no certificate", path.display())));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| {
            Error::internal(format!("clouds.yaml: cloud \"{}\": the HTTP client could not be built", config.name), e)
        })?;
        Ok(CloudClient { config, tokens_url, http, timeout, session: Mutex::new(None) })
    }

    fn system(&self, service: Service) -> String {
        format!("PCD cloud \"{}\" ({})", self.config.name, service.as_str())
    }

    fn fail(&self, service: Service, detail: impl Into<String>, source: Option<String>) -> Error {
        let system = self.system(service);
        let detail = detail.into();
        tracing::warn!(cloud = %self.config.name, service = service.as_str(), %detail, cause = source.as_deref().unwrap_or(""), "PCD call failed");
        match source {
            Some(s) => Error::upstream_caused(system, detail, s),
            None => Error::upstream(system, detail),
        }
    }

    fn transport(&self, service: Service, err: reqwest::Error) -> Error {
        let detail = if err.is_timeout() {
            format!("did not answer within {}", human(self.timeout))
        } else if err.is_connect() {
            "could not be reached".to_string()
        } else if err.is_body() || err.is_decode() {
            "sent an answer that could not be read".to_string()
        } else {
            "could not be called".to_string()
        };
        let system = self.system(service);
        tracing::warn!(cloud = %self.config.name, service = service.as_str(), %detail, error = %err, "PCD call failed");
        Error::upstream_caused(system, detail, err)
    }

    /// An answer we did not expect: `answered HTTP <code>`, the upstream's message kept for the log.
    /// A redirect says so: it is never followed, since it would carry the token elsewhere.
    async fn status_error(&self, service: Service, resp: Response) -> Error {
        let status = resp.status();
        if status.is_redirection() {
            let location = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            let to = outbound::origin_of(location, resp.url());
            return self.fail(
                service,
                format!("answered with a redirect (HTTP {}), which Gatehouse does not follow", status.as_u16()),
                Some(format!("HTTP {} redirect to {to}", status.as_u16())),
            );
        }
        let body = resp.bytes().await.unwrap_or_default();
        let message = upstream_message(&body);
        let detail = match status {
            StatusCode::UNAUTHORIZED if service != Service::Identity => {
                "refused our token (HTTP 401) even after re-authenticating".to_string()
            }
            _ => format!("answered HTTP {}", status.as_u16()),
        };
        self.fail(service, detail, Some(format!("HTTP {}: {}", status.as_u16(), message.unwrap_or_default())))
    }

    async fn read_json<T: DeserializeOwned>(&self, service: Service, resp: Response) -> Result<T, Error> {
        if !resp.status().is_success() {
            return Err(self.status_error(service, resp).await);
        }
        let body = resp.bytes().await.map_err(|e| self.transport(service, e))?;
        serde_json::from_slice(&body).map_err(|e| {
            self.fail(service, "sent an answer that could not be read", Some(format!("unexpected JSON: {e}")))
        })
    }

    /// The current token, or a new one. `rejected` is a token a service just refused: it is
    /// replaced unless another call already did that.
    async fn session(&self, rejected: Option<&Arc<Session>>) -> Result<Arc<Session>, Error> {
        let mut slot = self.session.lock().await;
        if let Some(current) = slot.as_ref() {
            let was_rejected = rejected.is_some_and(|r| Arc::ptr_eq(r, current));
            if !was_rejected && current.fresh() {
                return Ok(current.clone());
            }
        }
        *slot = None;
        let session = Arc::new(self.authenticate().await?);
        *slot = Some(session.clone());
        Ok(session)
    }

    async fn authenticate(&self) -> Result<Session, Error> {
        let started = Instant::now();
        let resp = self
            .http
            .post(self.tokens_url.clone())
            .header(ACCEPT, "application/json")
            .json(&keystone::auth_body(&self.config))
            .send()
            .await
            .map_err(|e| self.transport(Service::Identity, e))?;
        let status = resp.status();
        tracing::debug!(cloud = %self.config.name, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "keystone auth");
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let message = upstream_message(&resp.bytes().await.unwrap_or_default()).unwrap_or_default();
            return Err(self.fail(
                Service::Identity,
                format!("refused the credentials in clouds.yaml (HTTP {})", status.as_u16()),
                Some(message),
            ));
        }
        if !status.is_success() {
            return Err(self.status_error(Service::Identity, resp).await);
        }
        let token = resp.headers().get("X-Subject-Token").cloned();
        let Some(mut token) = token.filter(|t| !t.is_empty()) else {
            return Err(self.fail(Service::Identity, "answered without an X-Subject-Token", None));
        };
        token.set_sensitive(true);
        let answer: TokenAnswer = self.read_json(Service::Identity, resp).await?;
        if answer.token.catalog.is_none() {
            return Err(self.fail(Service::Identity, "answered without a service catalog", None));
        }
        tracing::info!(cloud = %self.config.name, expires_at = %answer.token.expires_at, "authenticated to Keystone");
        Ok(Session::new(&self.config, token, &answer.token, started))
    }

    /// Sends one call to `service` with the token; on a 401 authenticates again once and resends.
    /// Nova calls carry the microversion `ask` comes to (both headers: `X-OpenStack-Nova-API-Version`
    /// for a Nova older than 2.27); a 406 reads the version document again and resends once at what
    /// the cloud offers now (an API node rolled back behind the load balancer, or a Nova whose
    /// oldest microversion is above 2.1).
    async fn send<F>(
        &self,
        service: Service,
        method: Method,
        url: F,
        ask: Ask,
        body: Option<Body<'_>>,
    ) -> Result<Response, Error>
    where
        F: Fn(&Endpoint) -> Url + Send + Sync,
    {
        let mut session = self.session(None).await?;
        let mut retried = false;
        let mut refused: Option<Negotiated> = None;
        loop {
            let endpoint = match session.endpoints.get(&service) {
                Some(Ok(e)) => e,
                Some(Err(detail)) => return Err(self.fail(service, detail.clone(), None)),
                None => return Err(self.fail(service, "is not a service Gatehouse knows", None)),
            };
            let negotiated = match (service, ask, refused) {
                (Service::Compute, _, Some(refused)) => self.negotiated(&session, endpoint, Some(refused)).await?,
                (Service::Compute, Ask::Negotiated, None) => self.negotiated(&session, endpoint, None).await?,
                (Service::Compute, Ask::Base, None) => Negotiated { version: Some(microversion::BASE) },
                _ => Negotiated::BASE,
            };
            let target = url(endpoint);
            let mut req = self
                .http
                .request(method.clone(), target.clone())
                .header("X-Auth-Token", session.token.clone())
                .header(ACCEPT, "application/json");
            if let Some(version) = negotiated.version {
                let version = version.to_string();
                let both =
                    HeaderValue::from_str(&format!("compute {version}")).ok().zip(HeaderValue::from_str(&version).ok());
                if let Some((new, old)) = both {
                    req = req.header("OpenStack-API-Version", new).header("X-OpenStack-Nova-API-Version", old);
                }
            }
            if let Some(body) = body {
                req = req.json(&body(negotiated));
            }
            let started = Instant::now();
            let resp = req.send().await.map_err(|e| self.transport(service, e))?;
            tracing::debug!(
                cloud = %self.config.name,
                service = service.as_str(),
                method = %method,
                path = target.path(),
                status = resp.status().as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "PCD call"
            );
            if resp.status() == StatusCode::UNAUTHORIZED && !retried {
                tracing::info!(cloud = %self.config.name, service = service.as_str(), "token refused; authenticating again");
                retried = true;
                session = self.session(Some(&session)).await?;
                continue;
            }
            if resp.status() == StatusCode::NOT_ACCEPTABLE && negotiated.version.is_some() && refused.is_none() {
                let now = self.negotiated(&session, endpoint, Some(negotiated)).await?;
                if now != negotiated {
                    tracing::info!(cloud = %self.config.name, "compute microversion refused; sending the one offered now");
                    refused = Some(negotiated);
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    async fn get_json<T: DeserializeOwned, F>(&self, service: Service, url: F) -> Result<T, Error>
    where
        F: Fn(&Endpoint) -> Url + Send + Sync,
    {
        let resp = self.send(service, Method::GET, url, Ask::Base, None).await?;
        self.read_json(service, resp).await
    }

    /// A Nova or Neutron list: `key` holds the items; while `links_key` has a `next` link, asks
    /// again with `marker=<last id>` on our own URL (the links' host may be one we cannot reach).
    async fn list<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &[&str],
        query: &[(&str, &str)],
        key: &str,
        links_key: &str,
    ) -> Result<Vec<T>, Error> {
        let mut items = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let url = |e: &Endpoint| {
                let mut u = endpoint::join(&e.api, path);
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in query {
                        q.append_pair(k, v);
                    }
                    if let Some(m) = &marker {
                        q.append_pair("marker", m);
                    }
                }
                if u.query() == Some("") {
                    u.set_query(None);
                }
                u
            };
            let mut page: Value = self.get_json(service, url).await?;
            let Some(Value::Array(batch)) = page.get_mut(key).map(Value::take) else {
                return Err(self.fail(
                    service,
                    "sent an answer that could not be read",
                    Some(format!("no \"{key}\" list in the answer")),
                ));
            };
            let last_id = batch.last().and_then(|i| i.get("id")).and_then(Value::as_str).map(str::to_string);
            for item in batch {
                items.push(serde_json::from_value(item).map_err(|e| {
                    self.fail(service, "sent an answer that could not be read", Some(format!("unexpected JSON: {e}")))
                })?);
            }
            let has_next = page
                .get(links_key)
                .and_then(Value::as_array)
                .is_some_and(|links| links.iter().any(|l| l.get("rel").and_then(Value::as_str) == Some("next")));
            match last_id {
                Some(id) if has_next && marker.as_deref() != Some(id.as_str()) => marker = Some(id),
                _ => return Ok(items),
            }
        }
        Ok(items)
    }

    async fn networks(&self) -> Result<Vec<Network>, Error> {
        let networks: Vec<NeutronNetwork> =
            self.list(Service::Network, &["networks"], &[], "networks", "networks_links").await?;
        Ok(networks
            .into_iter()
            .filter(|n| n.status == "ACTIVE" && n.admin_state_up)
            .map(|n| Network::new(n.id, n.name.unwrap_or_default(), n.shared, n.external))
            .collect())
    }
}

#[async_trait]
impl Cloud for Pcd {
    fn clouds(&self) -> Vec<CloudInfo> {
        self.clouds
            .iter()
            .map(|c| CloudInfo {
                name: c.config.name.clone(),
                display_name: c.config.display_name.clone(),
                region: c.config.region_name.clone(),
            })
            .collect()
    }

    async fn images(&self, cloud: &str) -> Result<Vec<Image>, Error> {
        self.cloud(cloud)?.images().await
    }

    async fn flavors(&self, cloud: &str) -> Result<Vec<Flavor>, Error> {
        self.cloud(cloud)?.flavors().await
    }

    async fn networks(&self, cloud: &str) -> Result<Vec<Network>, Error> {
        self.cloud(cloud)?.networks().await
    }

    async fn create_server(&self, cloud: &str, spec: &ServerSpec) -> Result<String, Error> {
        self.cloud(cloud)?.create_server(spec).await
    }

    async fn server(&self, cloud: &str, id: &str) -> Result<Option<ServerState>, Error> {
        self.cloud(cloud)?.server(id).await
    }

    async fn servers_named(&self, cloud: &str, name: &str) -> Result<Vec<ServerState>, Error> {
        self.cloud(cloud)?.servers_named(name).await
    }

    async fn delete_server(&self, cloud: &str, id: &str) -> Result<(), Error> {
        self.cloud(cloud)?.delete_server(id).await
    }

    async fn limits(&self, cloud: &str) -> Result<ComputeLimits, Error> {
        self.cloud(cloud)?.limits().await
    }

    async fn set_server_metadata(&self, cloud: &str, id: &str, key: &str, value: &str) -> Result<(), Error> {
        self.cloud(cloud)?.set_server_metadata(id, key, value).await
    }
}

/// `10 s`, `250 ms`.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The `message` OpenStack services put in error bodies (`{"forbidden": {"message": …}}`,
/// `{"error": {"message": …}}`, `{"NeutronError": {"message": …}}`), else the start of the text;
/// cut short and on one line.
fn upstream_message(body: &[u8]) -> Option<String> {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return Some(m.to_string());
        }
        v.as_object()?.values().find_map(|inner| inner.get("message").and_then(Value::as_str).map(str::to_string))
    });
    let text = match from_json {
        Some(m) => m,
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct NeutronNetwork {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default = "yes")]
    admin_state_up: bool,
    #[serde(default)]
    shared: bool,
    #[serde(rename = "router:external", default)]
    external: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_messages_are_found_and_cut() {
        assert_eq!(
            upstream_message(br#"{"forbidden": {"message": "Quota exceeded for cores", "code": 403}}"#).as_deref(),
            Some("Quota exceeded for cores")
        );
        assert_eq!(
            upstream_message(br#"{"overLimit": {"code": 413, "message": "Quota exceeded for instances"}}"#).as_deref(),
            Some("Quota exceeded for instances")
        );
        assert_eq!(upstream_message(b"<html>\n  Bad   gateway</html>").as_deref(), Some("<html> Bad gateway</html>"));
        assert_eq!(upstream_message(b"").as_deref(), None);
        assert_eq!(upstream_message("x".repeat(1000).as_bytes()).unwrap().chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(10)), "10 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
    }
}
