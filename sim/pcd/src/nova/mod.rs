//! Nova v2.1 at `/compute`: version discovery, flavors and servers.
//!
//! Paths under `/compute/v2.1/` are dispatched by hand because Nova serves them both with and
//! without the project id (`/v2.1/{project_id}/servers` and `/v2.1/servers`).

// Validation helpers return the finished error `Response` as their `Err`; its size does not
// matter here.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::{
    Shared, SimFlavor, SimImage, SimNetwork, SimState, demo, hex_from, json_response, lock, random_string,
    rfc3339_secs, samples,
};

/// A compute microversion, (major, minor).
pub(crate) type Mv = (u32, u32);

mod create;
mod metadata;
pub(crate) mod quota;
pub(crate) mod versions;
use create::create;
use versions::{MIN_VERSION, parse_microversion, requested_microversion, version_doc, with_version_headers};
pub(crate) use versions::{version_v21, versions};

// ---------------------------------------------------------------------------------------------
// Server records
// ---------------------------------------------------------------------------------------------

pub(crate) struct Nic {
    network: String,
    addr: String,
    mac: String,
}

pub(crate) struct Server {
    seq: u64,
    id: String,
    name: String,
    created: Timestamp,
    /// When the server leaves BUILD; `None` while `never_active` holds it.
    ready_at: Option<Timestamp>,
    build_delay: Duration,
    error: Option<String>,
    /// `None` for a server booted from a volume (Nova shows `"image": ""`).
    image_id: Option<String>,
    flavor: SimFlavor,
    nics: Vec<Nic>,
    metadata: Map<String, Value>,
    request_body: Value,
    boot_from_volume: bool,
    volume: Option<(String, bool)>,
    admin_pass: String,
    access_ipv4: String,
    access_ipv6: String,
    key_name: Value,
    availability_zone: String,
    disk_config: String,
    security_groups: Value,
}

/// A volume Nova created from a boot block device mapping (`source_type` image, `destination_type`
/// volume). Deleting its server deletes it too when the mapping said `delete_on_termination: true`
/// ("To delete the boot volume when the server is destroyed, specify true. Otherwise, specify
/// false. Default: false", https://docs.openstack.org/api-ref/compute/#create-server); otherwise it
/// stays, detached and `available`, as Cinder then shows it.
pub(crate) struct Volume {
    id: String,
    size_gb: u64,
    /// The server it is attached to; `None` once that server is gone.
    server: Option<String>,
    delete_on_termination: bool,
}

#[derive(Default)]
pub(crate) struct Servers {
    list: Vec<Server>,
    volumes: Vec<Volume>,
    next_seq: u64,
    next_addr: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Build,
    Active,
    Error,
}

fn later(ts: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d).ok().and_then(|d| ts.checked_add(d).ok()).unwrap_or(Timestamp::MAX)
}

impl Servers {
    /// `never_active` on freezes servers still in BUILD; off starts the clock of frozen ones.
    pub(crate) fn apply_never_active(&mut self, never_active: bool) {
        let now = Timestamp::now();
        for s in &mut self.list {
            if never_active {
                if s.ready_at.is_some_and(|t| t > now) {
                    s.ready_at = None;
                }
            } else if s.ready_at.is_none() {
                s.ready_at = Some(later(now, s.build_delay));
            }
        }
    }

    pub(crate) fn snapshot(&self, st: &SimState) -> Vec<Value> {
        let now = Timestamp::now();
        self.list
            .iter()
            .map(|s| {
                let mut v = s.view(st, MIN_VERSION, now);
                v["boot_from_volume"] = json!(s.boot_from_volume);
                v["request_body"] = s.request_body.clone();
                v
            })
            .collect()
    }

    /// The volumes, oldest first: `{"id", "size", "status", "server_id", "delete_on_termination"}`.
    pub(crate) fn volumes_snapshot(&self) -> Vec<Value> {
        self.volumes
            .iter()
            .map(|v| {
                json!({"id": v.id, "size": v.size_gb, "status": if v.server.is_some() { "in-use" } else { "available" },
                       "server_id": v.server, "delete_on_termination": v.delete_on_termination})
            })
            .collect()
    }

    /// Records the boot volume created for `server` and answers its id.
    pub(crate) fn add_boot_volume(&mut self, server: &str, size_gb: u64, delete_on_termination: bool) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.volumes.push(Volume { id: id.clone(), size_gb, server: Some(server.to_string()), delete_on_termination });
        id
    }

    fn allocate_addr(&mut self) -> (String, String) {
        loop {
            let n = 10 + self.next_addr;
            self.next_addr += 1;
            let (hi, lo) = ((n >> 8) & 0xff, n & 0xff);
            if lo == 0 || lo == 255 {
                continue;
            }
            let addr = format!("10.0.{hi}.{lo}");
            let mac = format!("fa:16:3e:{:02x}:{hi:02x}:{lo:02x}", (n >> 16) & 0xff);
            return (addr, mac);
        }
    }
}

impl Server {
    fn phase(&self, now: Timestamp) -> (Phase, Option<Timestamp>) {
        match self.ready_at {
            Some(t) if t <= now => {
                let phase = if self.error.is_some() { Phase::Error } else { Phase::Active };
                (phase, Some(t))
            }
            _ => (Phase::Build, None),
        }
    }

    fn links(&self, st: &SimState) -> Value {
        let pid = &st.config.project_id;
        json!([
            {"href": format!("{}/compute/v2.1/{pid}/servers/{}", st.base, self.id), "rel": "self"},
            {"href": format!("{}/compute/{pid}/servers/{}", st.base, self.id), "rel": "bookmark"}
        ])
    }

    /// The server as `GET /servers/{id}` shows it at microversion `mv`.
    fn view(&self, st: &SimState, mv: Mv, now: Timestamp) -> Value {
        let pid = &st.config.project_id;
        let (phase, since) = self.phase(now);
        let mut v = samples::SERVER.clone();
        let addresses: Map<String, Value> = if phase == Phase::Active {
            let mut map = Map::new();
            for nic in &self.nics {
                let entry = json!({
                    "addr": nic.addr,
                    "OS-EXT-IPS-MAC:mac_addr": nic.mac,
                    "OS-EXT-IPS:type": "fixed",
                    "version": 4
                });
                match map.get_mut(&nic.network) {
                    Some(Value::Array(list)) => list.push(entry),
                    _ => {
                        map.insert(nic.network.clone(), json!([entry]));
                    }
                }
            }
            map
        } else {
            Map::new()
        };
        let flavor = if mv >= (2, 47) {
            json!({
                "vcpus": self.flavor.vcpus,
                "ram": self.flavor.ram,
                "disk": self.flavor.disk,
                "ephemeral": 0,
                "swap": 0,
                "original_name": self.flavor.name,
                "extra_specs": {}
            })
        } else {
            json!({
                "id": self.flavor.id,
                "links": [{
                    "href": format!("{}/compute/{pid}/flavors/{}", st.base, self.flavor.id),
                    "rel": "bookmark"
                }]
            })
        };
        let image = match &self.image_id {
            Some(id) => json!({
                "id": id,
                "links": [{
                    "href": format!("{}/compute/{pid}/images/{id}", st.base),
                    "rel": "bookmark"
                }]
            }),
            None => json!(""),
        };
        let volumes: Vec<Value> = self
            .volume
            .iter()
            .map(
                |(id, delete)| {
                    if mv >= (2, 3) { json!({"id": id, "delete_on_termination": delete}) } else { json!({"id": id}) }
                },
            )
            .collect();
        let placed = phase != Phase::Build;
        let (vm_state, task_state, power_state, status) = match phase {
            Phase::Build => ("building", json!("spawning"), 0, "BUILD"),
            Phase::Active => ("active", Value::Null, 1, "ACTIVE"),
            Phase::Error => ("error", Value::Null, 0, "ERROR"),
        };
        let launched_at = match (phase, since) {
            (Phase::Active, Some(t)) => json!(t.strftime("%Y-%m-%dT%H:%M:%S.%6f").to_string()),
            _ => Value::Null,
        };
        let fields = json!({
            "accessIPv4": self.access_ipv4,
            "accessIPv6": self.access_ipv6,
            "addresses": addresses,
            "created": rfc3339_secs(self.created),
            "flavor": flavor,
            "hostId": if placed { json!(hex_from(&format!("{pid}pcd-sim-host-1"), 56)) } else { json!("") },
            "id": self.id,
            "image": image,
            "key_name": self.key_name,
            "links": self.links(st),
            "metadata": self.metadata,
            "name": self.name,
            "config_drive": "",
            "OS-DCF:diskConfig": self.disk_config,
            "OS-EXT-AZ:availability_zone": if placed { json!(self.availability_zone) } else { json!("") },
            "OS-EXT-SRV-ATTR:host": if placed { json!("pcd-sim-host-1") } else { Value::Null },
            "OS-EXT-SRV-ATTR:hypervisor_hostname": if placed { json!("pcd-sim-host-1.localdomain") } else { Value::Null },
            "OS-EXT-SRV-ATTR:instance_name": format!("instance-{:08x}", self.seq),
            "OS-EXT-STS:power_state": power_state,
            "OS-EXT-STS:task_state": task_state,
            "OS-EXT-STS:vm_state": vm_state,
            "os-extended-volumes:volumes_attached": volumes,
            "OS-SRV-USG:launched_at": launched_at,
            "OS-SRV-USG:terminated_at": null,
            "progress": 0,
            "security_groups": self.security_groups,
            "status": status,
            "tenant_id": pid,
            "updated": rfc3339_secs(since.unwrap_or(self.created)),
            "user_id": demo::USER_ID,
        });
        let Some(obj) = v.as_object_mut() else {
            return fields;
        };
        if let Value::Object(fields) = fields {
            obj.extend(fields);
        }
        if phase == Phase::Error {
            obj.insert(
                "fault".into(),
                json!({
                    "code": 500,
                    "created": rfc3339_secs(since.unwrap_or(self.created)),
                    "message": self.error.clone().unwrap_or_default()
                }),
            );
        }
        if mv >= (2, 9) {
            obj.insert("locked".into(), json!(false));
        }
        let asked = &self.request_body["server"];
        if mv >= (2, 19) {
            obj.insert("description".into(), asked.get("description").cloned().unwrap_or(Value::Null));
        }
        if mv >= (2, 26) {
            obj.insert("tags".into(), asked.get("tags").cloned().unwrap_or_else(|| json!([])));
        }
        v
    }

    /// The short form of `GET /servers`.
    fn summary(&self, st: &SimState) -> Value {
        json!({"id": self.id, "links": self.links(st), "name": self.name})
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Nova's error body: `{"<fault name>": {"code": .., "message": ..}}`. Codes without a name of
/// their own (406 among them) are `computeFault`, as in Nova's `Fault._fault_names`.
fn fault(status: StatusCode, message: impl Into<String>) -> Response {
    let name = match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        _ => "computeFault",
    };
    json_response(status, json!({ name: {"code": status.as_u16(), "message": message.into()} }))
}

fn bad_request(message: impl Into<String>) -> Response {
    fault(StatusCode::BAD_REQUEST, message)
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// Everything under `/compute/v2.1/`.
pub(crate) async fn dispatch(
    State(st): Shared,
    method: Method,
    Path(rest): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (url_project, route) = match segs.first() {
        Some(&("servers" | "flavors" | "limits")) | None => (None, &segs[..]),
        Some(pid) => (Some(*pid), &segs[1..]),
    };
    if route.is_empty() && method == Method::GET {
        if let Err(resp) = st.gate("compute", "compute.versions", &headers, false).await {
            return resp;
        }
        return version_doc(&st);
    }
    let requested = requested_microversion(&headers);
    if let Some(raw) = &requested {
        *lock(&st.microversion) = Some(raw.clone());
    }
    let key = match (&method, route) {
        (&Method::GET, ["flavors"] | ["flavors", "detail"]) => "compute.flavors",
        (&Method::GET, ["flavors", _]) => "compute.flavor_get",
        (&Method::GET, ["servers"] | ["servers", "detail"]) => "compute.list",
        (&Method::POST, ["servers"]) => "compute.create",
        (&Method::GET, ["servers", _]) => "compute.get",
        (&Method::DELETE, ["servers", _]) => "compute.delete",
        (&Method::PUT, ["servers", _, "metadata", _]) => "compute.metadata_set",
        (&Method::GET, ["limits"]) => "compute.limits",
        _ => "compute.other",
    };
    let project = match st.gate("compute", key, &headers, true).await {
        Ok(project) => project,
        Err(resp) => return resp,
    };
    let mv = match parse_microversion(requested.as_deref(), st.max_microversion()) {
        Ok(mv) => mv,
        Err(resp) => return resp,
    };
    if let Some(pid) = url_project
        && pid != project
    {
        return with_version_headers(
            bad_request(format!(
                "Malformed request URL: URL's project_id '{pid}' doesn't match Context's \
                 project_id '{project}'"
            )),
            mv,
        );
    }
    let resp = match (&method, route) {
        (&Method::GET, ["flavors", "detail"]) => flavor_list(&st, mv, true),
        (&Method::GET, ["flavors"]) => flavor_list(&st, mv, false),
        (&Method::GET, ["flavors", id]) => flavor_show(&st, mv, id),
        (&Method::GET, ["servers", "detail"]) => server_list(&st, mv, &query, true),
        (&Method::GET, ["servers"]) => server_list(&st, mv, &query, false),
        (&Method::POST, ["servers"]) => {
            let resp = create(&st, mv, &body);
            // The server exists now; a slow answer lets a test kill the client before it hears.
            let delay = st.faults().create_reply_delay_ms;
            if delay > 0 && resp.status() == StatusCode::ACCEPTED {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            resp
        }
        (&Method::GET, ["servers", id]) => server_show(&st, mv, id),
        (&Method::DELETE, ["servers", id]) => server_delete(&st, id),
        (&Method::PUT, ["servers", id, "metadata", key]) => metadata::set_item(&st, id, key, &body),
        (&Method::GET, ["limits"]) => quota::limits(&st, mv),
        (_, ["flavors", ..] | ["servers", ..]) if route.len() <= 2 => {
            fault(StatusCode::METHOD_NOT_ALLOWED, "The method specified is not allowed for this resource.")
        }
        _ => fault(StatusCode::NOT_FOUND, "The resource could not be found."),
    };
    with_version_headers(resp, mv)
}

fn flavor_json(st: &SimState, f: &SimFlavor, mv: Mv, detail: bool) -> Value {
    let pid = &st.config.project_id;
    let links = json!([
        {"href": format!("{}/compute/v2.1/{pid}/flavors/{}", st.base, f.id), "rel": "self"},
        {"href": format!("{}/compute/{pid}/flavors/{}", st.base, f.id), "rel": "bookmark"}
    ]);
    let mut v = if detail {
        let mut v = samples::FLAVOR.clone();
        v["id"] = json!(f.id);
        v["name"] = json!(f.name);
        v["ram"] = json!(f.ram);
        v["vcpus"] = json!(f.vcpus);
        v["disk"] = json!(f.disk);
        v["links"] = links;
        if mv >= (2, 61) {
            v["extra_specs"] = json!({});
        }
        v
    } else {
        json!({"id": f.id, "links": links, "name": f.name})
    };
    if mv >= (2, 55) {
        v["description"] = Value::Null;
    }
    v
}

fn flavor_list(st: &SimState, mv: Mv, detail: bool) -> Response {
    let flavors: Vec<Value> = st.config.flavors.iter().map(|f| flavor_json(st, f, mv, detail)).collect();
    json_response(StatusCode::OK, json!({ "flavors": flavors }))
}

fn flavor_show(st: &SimState, mv: Mv, id: &str) -> Response {
    match st.config.flavors.iter().find(|f| f.id == id) {
        Some(f) => json_response(StatusCode::OK, json!({"flavor": flavor_json(st, f, mv, true)})),
        None => fault(StatusCode::NOT_FOUND, format!("Flavor {id} could not be found.")),
    }
}

fn server_list(st: &SimState, mv: Mv, query: &[(String, String)], detail: bool) -> Response {
    let param = |name: &str| query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    // Nova applies `name` as an unanchored regular expression search.
    let name_re = match param("name") {
        None => None,
        Some(pattern) => match regex::RegexBuilder::new(pattern).size_limit(1 << 20).build() {
            Ok(re) => Some(re),
            Err(err) => return bad_request(format!("Invalid regular expression in name: {err}")),
        },
    };
    let status = param("status").map(str::to_ascii_uppercase);
    let now = Timestamp::now();
    let servers = lock(&st.servers);
    let mut matching: Vec<&Server> = servers
        .list
        .iter()
        .filter(|s| name_re.as_ref().is_none_or(|re| re.is_match(&s.name)))
        .filter(|s| {
            status.as_deref().is_none_or(|want| {
                let (phase, _) = s.phase(now);
                let have = match phase {
                    Phase::Build => "BUILD",
                    Phase::Active => "ACTIVE",
                    Phase::Error => "ERROR",
                };
                have == want
            })
        })
        .collect();
    // Nova's default order: newest first.
    matching.sort_by_key(|s| std::cmp::Reverse(s.seq));
    if let Some(limit) = param("limit").and_then(|l| l.parse::<usize>().ok()) {
        matching.truncate(limit);
    }
    let list: Vec<Value> = matching.iter().map(|s| if detail { s.view(st, mv, now) } else { s.summary(st) }).collect();
    json_response(StatusCode::OK, json!({ "servers": list }))
}

fn instance_not_found(id: &str) -> Response {
    fault(StatusCode::NOT_FOUND, format!("Instance {id} could not be found."))
}

fn server_show(st: &SimState, mv: Mv, id: &str) -> Response {
    let servers = lock(&st.servers);
    match servers.list.iter().find(|s| s.id == id) {
        Some(s) => json_response(StatusCode::OK, json!({"server": s.view(st, mv, Timestamp::now())})),
        None => instance_not_found(id),
    }
}

fn server_delete(st: &SimState, id: &str) -> Response {
    let mut servers = lock(&st.servers);
    match servers.list.iter().position(|s| s.id == id) {
        Some(pos) => {
            servers.list.remove(pos);
            servers.volumes.retain(|v| v.server.as_deref() != Some(id) || !v.delete_on_termination);
            for kept in servers.volumes.iter_mut().filter(|v| v.server.as_deref() == Some(id)) {
                kept.server = None;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        None => instance_not_found(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nova::create::reference;

    #[test]
    fn references_may_be_urls() {
        assert_eq!(reference(&json!("abc")).as_deref(), Some("abc"));
        assert_eq!(reference(&json!("http://x/compute/p/flavors/abc")).as_deref(), Some("abc"));
        assert_eq!(reference(&json!(1)).as_deref(), Some("1"));
        assert_eq!(reference(&json!(null)), None);
    }

    #[test]
    fn addresses_are_distinct() {
        let mut s = Servers::default();
        let a: Vec<String> = (0..600).map(|_| s.allocate_addr().0).collect();
        let mut b = a.clone();
        b.sort();
        b.dedup();
        assert_eq!(a.len(), b.len());
        assert_eq!(a[0], "10.0.0.10");
    }
}
