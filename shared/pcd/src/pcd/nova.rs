//! Nova (compute): flavors, servers and limits, at the microversion negotiated for the cloud.

use std::collections::BTreeMap;

use domain::Error;
use domain::catalog::Flavor;
use domain::compute::{ComputeLimits, ServerSpec, ServerState};
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CloudClient, upstream_message};
use crate::endpoint::{self, Endpoint, Service};
use crate::keystone::Session;
use crate::microversion::{self, Ask, Negotiated};

impl CloudClient {
    /// The microversion for this token's compute endpoint, read from its version document once
    /// per token. `refused` is one a call was just answered 406 with: the document is read again,
    /// unless another call already did.
    pub(super) async fn negotiated(
        &self,
        session: &Session,
        endpoint: &Endpoint,
        refused: Option<Negotiated>,
    ) -> Result<Negotiated, Error> {
        let mut slot = session.compute.lock().await;
        if let Some(current) = *slot
            && refused != Some(current)
        {
            return Ok(current);
        }
        let found = self.read_version_document(endpoint).await?;
        tracing::info!(
            cloud = %self.config.name,
            microversion = %found.version.map(|v| v.to_string()).unwrap_or_else(|| "none (2.1)".into()),
            "compute microversion negotiated"
        );
        *slot = Some(found);
        Ok(found)
    }

    /// `GET …/v2.1/`: Nova serves it without a token. A document that cannot be read leaves 2.1
    /// behaviour (no microversion sent, which every Nova takes); a 5xx or no answer is an error,
    /// so that a passing outage does not pin the cloud to 2.1 for a token's lifetime.
    async fn read_version_document(&self, endpoint: &Endpoint) -> Result<Negotiated, Error> {
        let url = endpoint::version_root(&endpoint.api);
        let resp = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport(Service::Compute, e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(self.status_error(Service::Compute, resp).await);
        }
        let doc = if status.is_success() { resp.json::<Value>().await.ok() } else { None };
        match doc.as_ref().and_then(Negotiated::from_document) {
            Some(found) => Ok(found),
            None => {
                tracing::warn!(cloud = %self.config.name, status = status.as_u16(), "no readable compute version document; using 2.1 behaviour");
                Ok(Negotiated::BASE)
            }
        }
    }

    pub(super) async fn flavors(&self) -> Result<Vec<Flavor>, Error> {
        let flavors: Vec<NovaFlavor> =
            self.list(Service::Compute, &["flavors", "detail"], &[], "flavors", "flavors_links").await?;
        Ok(flavors
            .into_iter()
            .filter(|f| !f.disabled)
            .map(|f| Flavor::new(f.id.0, f.name, f.vcpus, f.ram, f.disk))
            .collect())
    }

    pub(super) async fn create_server(&self, spec: &ServerSpec) -> Result<String, Error> {
        let body = |negotiated: Negotiated| create_body(spec, negotiated);
        let resp = self
            .send(
                Service::Compute,
                Method::POST,
                |e| endpoint::join(&e.api, &["servers"]),
                Ask::Negotiated,
                Some(&body),
            )
            .await?;
        let status = resp.status();
        // Nova answers 403 for quota (`TooManyInstances`, HTTPForbidden in servers.py); 413 is
        // what older Novas and some proxies say.
        if status == StatusCode::FORBIDDEN || status == StatusCode::PAYLOAD_TOO_LARGE {
            let body = resp.bytes().await.unwrap_or_default();
            let detail = upstream_message(&body)
                .unwrap_or_else(|| format!("Nova refused the server (HTTP {})", status.as_u16()));
            tracing::warn!(cloud = %self.config.name, status = status.as_u16(), %detail, "Nova refused a server for quota");
            return Err(Error::Quota { system: self.system(Service::Compute), detail });
        }
        let created: CreatedServer = self.read_json(Service::Compute, resp).await?;
        tracing::info!(cloud = %self.config.name, server = %created.server.id, name = %spec.name, "server create sent");
        Ok(created.server.id)
    }

    pub(super) async fn server(&self, id: &str) -> Result<Option<ServerState>, Error> {
        let resp = self
            .send(Service::Compute, Method::GET, |e| endpoint::join(&e.api, &["servers", id]), Ask::Base, None)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let found: OneServer = self.read_json(Service::Compute, resp).await?;
        Ok(Some(found.server.into()))
    }

    pub(super) async fn servers_named(&self, name: &str) -> Result<Vec<ServerState>, Error> {
        let pattern = format!("^{}$", regex_escape(name));
        let servers: Vec<NovaServer> = self
            .list(Service::Compute, &["servers", "detail"], &[("name", &pattern)], "servers", "servers_links")
            .await?;
        // Names are compared here too: the filter is a regex, and from 2.69 a server in a down
        // cell may come back without its name.
        Ok(servers.into_iter().filter(|s| s.name == name).map(ServerState::from).collect())
    }

    pub(super) async fn delete_server(&self, id: &str) -> Result<(), Error> {
        let resp = self
            .send(Service::Compute, Method::DELETE, |e| endpoint::join(&e.api, &["servers", id]), Ask::Base, None)
            .await?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            tracing::info!(cloud = %self.config.name, server = %id, status = status.as_u16(), "server delete sent");
            return Ok(());
        }
        Err(self.status_error(Service::Compute, resp).await)
    }

    /// `PUT /servers/{id}/metadata/{key}` with `{"meta": {key: value}}`: sets one item, leaving the
    /// others ("Creates or replaces a metadata item, by key, for a server",
    /// https://docs.openstack.org/api-ref/compute/#create-or-update-metadata-item). 404 is
    /// `Error::NotFound`.
    pub(super) async fn set_server_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), Error> {
        let body = |_: Negotiated| json!({"meta": {key: value}});
        let resp = self
            .send(
                Service::Compute,
                Method::PUT,
                |e| endpoint::join(&e.api, &["servers", id, "metadata", key]),
                Ask::Base,
                Some(&body),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(Error::NotFound(format!("server {id} on cloud {}", self.config.name))),
            _ => Err(self.status_error(Service::Compute, resp).await),
        }
    }

    /// `GET /limits`: the project's absolute limits and use.
    pub(super) async fn limits(&self) -> Result<ComputeLimits, Error> {
        let doc: LimitsDocument = self.get_json(Service::Compute, |e| endpoint::join(&e.api, &["limits"])).await?;
        Ok(doc.limits.absolute.into())
    }
}

/// The create body for `spec` as the negotiated microversion takes it: `description` from 2.19
/// and `tags` from 2.52 (a Nova below answers 400 to either: its schema allows no other
/// properties); the rest is 2.1.
pub(super) fn create_body(spec: &ServerSpec, negotiated: Negotiated) -> Value {
    let mut server = json!({
        "name": spec.name,
        "imageRef": spec.image_id,
        "flavorRef": spec.flavor_id,
        "networks": [{"uuid": spec.network_id}],
        "metadata": spec.metadata,
    });
    if let Some(size) = spec.boot_volume_gb {
        server["imageRef"] = json!("");
        server["block_device_mapping_v2"] = json!([{
            "boot_index": 0,
            "uuid": spec.image_id,
            "source_type": "image",
            "destination_type": "volume",
            "volume_size": size,
            "delete_on_termination": true,
        }]);
    }
    if let Some(description) = &spec.description
        && negotiated.supports(microversion::SERVER_DESCRIPTION)
    {
        server["description"] = json!(description);
    }
    if !spec.tags.is_empty() && negotiated.supports(microversion::SERVER_TAGS_ON_CREATE) {
        server["tags"] = json!(spec.tags);
    }
    json!({ "server": server })
}

/// Escapes what a POSIX/Python regex would read as syntax, so a name matches only itself.
pub(super) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An id Nova may send as a string or (very old flavors) a number.
struct AnyId(String);

impl<'de> Deserialize<'de> for AnyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(AnyId(s)),
            Value::Number(n) => Ok(AnyId(n.to_string())),
            _ => Err(serde::de::Error::custom("an id must be a string or a number")),
        }
    }
}

#[derive(Deserialize)]
struct NovaFlavor {
    id: AnyId,
    #[serde(default)]
    name: String,
    #[serde(default)]
    vcpus: u64,
    #[serde(default)]
    ram: u64,
    #[serde(default)]
    disk: u64,
    #[serde(rename = "OS-FLV-DISABLED:disabled", default)]
    disabled: bool,
}

#[derive(Deserialize)]
struct CreatedServer {
    server: CreatedId,
}

#[derive(Deserialize)]
struct CreatedId {
    id: String,
}

#[derive(Deserialize)]
struct OneServer {
    server: NovaServer,
}

#[derive(Deserialize)]
struct NovaServer {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    addresses: BTreeMap<String, Vec<NovaAddress>>,
    #[serde(default)]
    fault: Option<NovaFault>,
    #[serde(default)]
    metadata: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct NovaAddress {
    addr: String,
}

#[derive(Deserialize)]
struct NovaFault {
    #[serde(default)]
    message: Option<String>,
}

impl From<NovaServer> for ServerState {
    fn from(s: NovaServer) -> Self {
        ServerState {
            id: s.id,
            name: s.name,
            status: s.status,
            addresses: s.addresses.into_values().flatten().map(|a| a.addr).collect(),
            fault: s.fault.and_then(|f| f.message).filter(|m| !m.is_empty()),
            metadata: s
                .metadata
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct LimitsDocument {
    limits: LimitsBody,
}

#[derive(Deserialize)]
struct LimitsBody {
    absolute: AbsoluteLimits,
}

/// The fields of `limits.absolute` Gatehouse reads; all are there from 2.1 on (the API reference,
/// "Show Rate And Absolute Limits"). A maximum of -1 is unlimited; a missing one is taken as
/// unlimited too, rather than refusing everything.
#[derive(Deserialize)]
struct AbsoluteLimits {
    #[serde(rename = "maxTotalInstances", default)]
    max_instances: Option<i64>,
    #[serde(rename = "maxTotalCores", default)]
    max_cores: Option<i64>,
    #[serde(rename = "maxTotalRAMSize", default)]
    max_ram: Option<i64>,
    #[serde(rename = "totalInstancesUsed", default)]
    instances_used: i64,
    #[serde(rename = "totalCoresUsed", default)]
    cores_used: i64,
    #[serde(rename = "totalRAMUsed", default)]
    ram_used: i64,
}

impl From<AbsoluteLimits> for ComputeLimits {
    fn from(a: AbsoluteLimits) -> Self {
        let max = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
        let used = |n: i64| u64::try_from(n).unwrap_or(0);
        ComputeLimits {
            max_instances: max(a.max_instances),
            max_cores: max(a.max_cores),
            max_ram_mb: max(a.max_ram),
            instances_used: used(a.instances_used),
            cores_used: used(a.cores_used),
            ram_used_mb: used(a.ram_used),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microversion::Microversion;

    #[test]
    fn names_are_escaped_for_nova_regex_filter() {
        assert_eq!(regex_escape("web-01"), "web-01");
        assert_eq!(regex_escape("a.b*c"), "a\\.b\\*c");
        assert_eq!(regex_escape("(x)[y]{z}^$|?+\\"), "\\(x\\)\\[y\\]\\{z\\}\\^\\$\\|\\?\\+\\\\");
    }

    #[test]
    fn servers_flatten_addresses_and_fault() {
        let s: NovaServer = serde_json::from_value(json!({
            "id": "s1", "name": "web-01", "status": "ERROR",
            "addresses": {"net-a": [{"addr": "10.0.0.5", "version": 4}], "net-b": [{"addr": "fd00::5", "version": 6}]},
            "fault": {"message": "No valid host was found.", "code": 500},
            "metadata": {"gatehouse_request_id": "r1"}
        }))
        .unwrap();
        let s = ServerState::from(s);
        assert_eq!(s.addresses, ["10.0.0.5", "fd00::5"]);
        assert_eq!(s.fault.as_deref(), Some("No valid host was found."));
        assert_eq!(s.metadata["gatehouse_request_id"], "r1");
    }

    fn spec() -> ServerSpec {
        ServerSpec {
            name: "web-01".into(),
            image_id: "img".into(),
            flavor_id: "fl".into(),
            network_id: "net".into(),
            metadata: BTreeMap::from([("gatehouse_request_id".to_string(), "r1".to_string())]),
            boot_volume_gb: None,
            description: Some("Gatehouse request r1".into()),
            tags: vec!["gatehouse".into()],
        }
    }

    fn at(version: Option<(u32, u32)>) -> Negotiated {
        Negotiated { version: version.map(|(a, b)| Microversion::new(a, b)) }
    }

    #[test]
    fn the_create_body_carries_only_what_the_microversion_takes() {
        let base = create_body(&spec(), at(None));
        let server = base["server"].as_object().unwrap();
        let mut keys: Vec<_> = server.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["flavorRef", "imageRef", "metadata", "name", "networks"]);
        assert_eq!(create_body(&spec(), at(Some((2, 1)))), base);

        let described = create_body(&spec(), at(Some((2, 19))));
        assert_eq!(described["server"]["description"], "Gatehouse request r1");
        assert!(described["server"].get("tags").is_none());

        let tagged = create_body(&spec(), at(Some((2, 52))));
        assert_eq!(tagged["server"]["tags"], json!(["gatehouse"]));
    }

    #[test]
    fn limits_are_read_from_the_published_sample() {
        let doc: LimitsDocument = serde_json::from_str(include_str!(
            "../../../../sim/samples/openstack-api-samples/nova-limits-get-v2.36-response.json"
        ))
        .unwrap();
        let limits = ComputeLimits::from(doc.limits.absolute);
        assert_eq!(
            limits,
            ComputeLimits {
                max_instances: Some(10),
                max_cores: Some(20),
                max_ram_mb: Some(51200),
                instances_used: 0,
                cores_used: 0,
                ram_used_mb: 0
            }
        );
    }

    #[test]
    fn minus_one_is_unlimited() {
        let a: AbsoluteLimits = serde_json::from_value(json!({
            "maxTotalInstances": -1, "maxTotalCores": 8, "totalCoresUsed": 3, "totalInstancesUsed": 2
        }))
        .unwrap();
        let l = ComputeLimits::from(a);
        assert_eq!((l.max_instances, l.max_cores, l.max_ram_mb), (None, Some(8), None));
        assert_eq!((l.instances_used, l.cores_used, l.ram_used_mb), (2, 3, 0));
    }
}
