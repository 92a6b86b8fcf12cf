//! A simulator of a Platform9 Private Cloud Director (OpenStack) cloud for tests and the demo.
//!
//! One HTTP port serves Keystone v3 (`/identity`), Nova v2.1 (`/compute`), Glance v2 (`/image`)
//! and Neutron v2.0 (`/network`), plus a small control API under `/_sim` for when the simulator
//! runs as its own process. Response bodies follow the published OpenStack API samples kept in
//! `sim/samples/openstack-api-samples/` (embedded at build time, hosts and ids rewritten at run time).
//!
//! Control API (same port): `GET|PUT /_sim/faults` (JSON [`Faults`]), `POST /_sim/expire-tokens`,
//! `GET /_sim/servers` (a JSON array, as [`PcdSim::servers`]), `GET /_sim/volumes` (as
//! [`PcdSim::volumes`]), `GET /_sim/calls` (as
//! [`PcdSim::calls`]), `GET|PUT /_sim/compute` (JSON [`ComputeSettings`]: the advertised maximum
//! microversion and the quota). Call keys: `identity.versions`, `identity.auth`, `image.versions`,
//! `image.list`, `image.get`, `compute.versions`, `compute.flavors`, `compute.flavor_get`,
//! `compute.list`, `compute.create`, `compute.get`, `compute.delete`, `compute.metadata_set`, `compute.limits`,
//! `compute.other`, `network.versions`, `network.list`, `network.get`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = pcd_sim::PcdSim::start("127.0.0.1:0".parse().unwrap(), Default::default()).await?;
//! println!("clouds.yaml entry:\n{}", sim.clouds_yaml_entry());
//! sim.stop().await;
//! # Ok(()) }
//! ```

mod control;
mod glance;
mod keystone;
mod neutron;
mod nova;
mod samples;

pub use control::ComputeSettings;
pub use nova::quota::Quota;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sim_server::Served;

/// Fixed ids of the demo catalog ([`SimConfig::default`]), so tests can refer to them.
pub mod demo {
    /// Project id of the demo project `demo`.
    pub const PROJECT_ID: &str = "9a1b7c3e5f2d4a6b8c0e1f2a3b4c5d6e";
    /// Id of the (only) user; its name is [`super::SimConfig::username`].
    pub const USER_ID: &str = "5a6b7c8d9e0f41a2b3c4d5e6f7a8b9c0";

    /// Image "Ubuntu 24.04 LTS" (active).
    pub const IMAGE_UBUNTU_2404: &str = "1a9e0000-0000-4000-8000-000000000001";
    /// Image "Rocky Linux 9" (active).
    pub const IMAGE_ROCKY_9: &str = "1a9e0000-0000-4000-8000-000000000002";
    /// Image "Debian 12" (active).
    pub const IMAGE_DEBIAN_12: &str = "1a9e0000-0000-4000-8000-000000000003";
    /// Image "Windows Server 2022" (active, min_disk 40).
    pub const IMAGE_WINDOWS_2022: &str = "1a9e0000-0000-4000-8000-000000000004";
    /// Image "cirros-legacy" (status "deactivated").
    pub const IMAGE_CIRROS_LEGACY: &str = "1a9e0000-0000-4000-8000-000000000005";
    /// Image "upload-in-progress" (status "queued").
    pub const IMAGE_UPLOAD_IN_PROGRESS: &str = "1a9e0000-0000-4000-8000-000000000006";

    /// Flavor "m1.tiny" (1 vCPU, 512 MB, 1 GB).
    pub const FLAVOR_M1_TINY: &str = "f1a70000-0000-4000-8000-000000000001";
    /// Flavor "m1.small" (1 vCPU, 2048 MB, 20 GB).
    pub const FLAVOR_M1_SMALL: &str = "f1a70000-0000-4000-8000-000000000002";
    /// Flavor "m1.medium" (2 vCPU, 4096 MB, 40 GB).
    pub const FLAVOR_M1_MEDIUM: &str = "f1a70000-0000-4000-8000-000000000003";
    /// Flavor "m1.large" (4 vCPU, 8192 MB, 80 GB).
    pub const FLAVOR_M1_LARGE: &str = "f1a70000-0000-4000-8000-000000000004";
    /// Flavor "bfv.medium" (2 vCPU, 4096 MB, disk 0: boot from volume only).
    pub const FLAVOR_BFV_MEDIUM: &str = "f1a70000-0000-4000-8000-000000000005";

    /// Network "prod-net".
    pub const NETWORK_PROD: &str = "0e770000-0000-4000-8000-000000000001";
    /// Network "dev-net".
    pub const NETWORK_DEV: &str = "0e770000-0000-4000-8000-000000000002";
    /// Network "shared-services" (shared).
    pub const NETWORK_SHARED_SERVICES: &str = "0e770000-0000-4000-8000-000000000003";
    /// Network "public" (router:external).
    pub const NETWORK_PUBLIC: &str = "0e770000-0000-4000-8000-000000000004";
}

/// What the simulated cloud knows: credentials, timings and its catalog of images, flavors and
/// networks. [`SimConfig::default`] is the demo cloud (see [`demo`] for its ids).
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub username: String,
    pub password: String,
    /// User domain name (its id is accepted too: "default" for "Default", else the lowercase name).
    pub user_domain: String,
    /// Project domain name (its id is accepted too, as for `user_domain`).
    pub project_domain: String,
    pub project_name: String,
    pub project_id: String,
    pub app_credential_id: String,
    pub app_credential_secret: String,
    pub region: String,
    /// Lifetime of issued tokens (`expires_at` in the token body).
    pub token_ttl: Duration,
    /// A new server goes BUILD -> ACTIVE after this (unless [`Faults`] say otherwise).
    pub build_delay: Duration,
    /// Glance's largest page: a bigger `limit` is capped to it, so clients must follow `next`.
    pub image_page_size: usize,
    /// Newest first: each image's `created_at` is a day before the one above it (cycling every
    /// 28 images), so Glance's default order (`created_at` descending) is this order.
    pub images: Vec<SimImage>,
    pub flavors: Vec<SimFlavor>,
    pub networks: Vec<SimNetwork>,
    /// The highest compute microversion advertised and accepted (from 2.1; the published
    /// samples' 2.104 by default). A higher one is refused with Nova's 406.
    pub max_microversion: (u32, u32),
    /// The project's compute quota (the demo's is large); `GET /limits` reports it and server
    /// create is refused with Nova's 403 beyond it.
    pub quota: Quota,
}

/// A Glance image. `min_disk` is in GB, `min_ram` in MB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimImage {
    pub id: String,
    pub name: String,
    pub status: String,
    pub min_disk: u64,
    pub min_ram: u64,
}

/// A Nova flavor. `ram` is in MB, `disk` in GB (0: boot from volume only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimFlavor {
    pub id: String,
    pub name: String,
    pub vcpus: u64,
    pub ram: u64,
    pub disk: u64,
}

/// A Neutron network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimNetwork {
    pub id: String,
    pub name: String,
    pub status: String,
    pub shared: bool,
    pub external: bool,
}

impl SimImage {
    fn new(id: &str, name: &str, status: &str, min_disk: u64) -> Self {
        SimImage { id: id.into(), name: name.into(), status: status.into(), min_disk, min_ram: 0 }
    }
}

impl SimFlavor {
    fn new(id: &str, name: &str, vcpus: u64, ram: u64, disk: u64) -> Self {
        SimFlavor { id: id.into(), name: name.into(), vcpus, ram, disk }
    }
}

impl SimNetwork {
    fn new(id: &str, name: &str, shared: bool, external: bool) -> Self {
        SimNetwork { id: id.into(), name: name.into(), status: "ACTIVE".into(), shared, external }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        use demo::*;
        SimConfig {
            username: "admin".into(),
            password: "secret".into(),
            user_domain: "Default".into(),
            project_domain: "Default".into(),
            project_name: "demo".into(),
            project_id: PROJECT_ID.into(),
            app_credential_id: "appcred-id".into(),
            app_credential_secret: "appcred-secret".into(),
            region: "RegionOne".into(),
            token_ttl: Duration::from_secs(3600),
            build_delay: Duration::from_secs(2),
            image_page_size: 2,
            images: vec![
                SimImage::new(IMAGE_UBUNTU_2404, "Ubuntu 24.04 LTS", "active", 0),
                SimImage::new(IMAGE_ROCKY_9, "Rocky Linux 9", "active", 0),
                SimImage::new(IMAGE_DEBIAN_12, "Debian 12", "active", 0),
                SimImage::new(IMAGE_WINDOWS_2022, "Windows Server 2022", "active", 40),
                SimImage::new(IMAGE_CIRROS_LEGACY, "cirros-legacy", "deactivated", 0),
                SimImage::new(IMAGE_UPLOAD_IN_PROGRESS, "upload-in-progress", "queued", 0),
            ],
            // Deliberately not sorted.
            flavors: vec![
                SimFlavor::new(FLAVOR_M1_LARGE, "m1.large", 4, 8192, 80),
                SimFlavor::new(FLAVOR_M1_TINY, "m1.tiny", 1, 512, 1),
                SimFlavor::new(FLAVOR_M1_MEDIUM, "m1.medium", 2, 4096, 40),
                SimFlavor::new(FLAVOR_M1_SMALL, "m1.small", 1, 2048, 20),
                SimFlavor::new(FLAVOR_BFV_MEDIUM, "bfv.medium", 2, 4096, 0),
            ],
            networks: vec![
                SimNetwork::new(NETWORK_PROD, "prod-net", false, false),
                SimNetwork::new(NETWORK_DEV, "dev-net", false, false),
                SimNetwork::new(NETWORK_SHARED_SERVICES, "shared-services", true, false),
                SimNetwork::new(NETWORK_PUBLIC, "public", false, true),
            ],
            max_microversion: nova::versions::SAMPLE_MAX_VERSION,
            quota: Quota::default(),
        }
    }
}

/// Fault switches, applied per call. Settable with [`PcdSim::set_faults`] or `PUT /_sim/faults`
/// (missing JSON fields take their defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added before answering every call (Keystone included; not the `/_sim` control API).
    pub latency_ms: u64,
    /// Services answering 503: any of "identity", "compute", "image", "network".
    pub fail_services: Vec<String>,
    /// Servers created while this is set go to ERROR with this `fault.message`.
    pub server_error: Option<String>,
    /// Server create answers 403 (`forbidden`) or 413 (`overLimit`) with Nova's quota error.
    pub quota: Option<u16>,
    /// Server create answers this status (a 5xx) with a `computeFault` body.
    pub create_status: Option<u16>,
    /// Servers stay BUILD while this is set (also those still building when it is set).
    pub never_active: bool,
    /// Overrides [`SimConfig::build_delay`] for servers created while it is set.
    pub build_delay_ms: Option<u64>,
    /// Server create records the server, then waits this long before answering.
    pub create_reply_delay_ms: u64,
    /// Images deleted as soon as an image list page has shown them: one deleted while a client
    /// pages through the list (a later `marker` naming it is refused, as Glance refuses it).
    pub delete_after_listing: Vec<String>,
}

/// A running simulator. Dropping it aborts the server task; [`PcdSim::stop`] shuts it down
/// gracefully.
pub struct PcdSim {
    state: Arc<SimState>,
    served: Served,
}

impl PcdSim {
    /// Binds `listen` (port 0 picks a free port) and serves in a background task.
    pub async fn start(listen: SocketAddr, config: SimConfig) -> std::io::Result<PcdSim> {
        let (listener, base) = sim_server::bind(listen).await?;
        let state = Arc::new(SimState::new(config, base));
        let app = control::router(state.clone());
        let served = Served::spawn(listener, app, "pcd-sim");
        tracing::info!(url = %state.base, "pcd-sim listening");
        Ok(PcdSim { state, served })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.state.base.clone()
    }

    /// The Keystone v3 URL: base + `/identity/v3`.
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.state.base)
    }

    /// One cloud's entry for clouds.yaml (the mapping under `clouds: <name>:`, unindented):
    /// password auth plus `region_name`.
    pub fn clouds_yaml_entry(&self) -> String {
        let c = &self.state.config;
        let q = |s: &str| Value::String(s.to_string()).to_string();
        format!(
            "auth:\n  auth_url: {}\n  username: {}\n  password: {}\n  project_name: {}\n  \
             user_domain_name: {}\n  project_domain_name: {}\nregion_name: {}\n",
            q(&self.auth_url()),
            q(&c.username),
            q(&c.password),
            q(&c.project_name),
            q(&c.user_domain),
            q(&c.project_domain),
            q(&c.region),
        )
    }

    /// A whole clouds.yaml document with [`PcdSim::clouds_yaml_entry`] under `cloud_name`.
    pub fn clouds_yaml(&self, cloud_name: &str) -> String {
        let mut out = format!("clouds:\n  {}:\n", Value::String(cloud_name.into()));
        for line in self.clouds_yaml_entry().lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    pub fn set_faults(&self, f: Faults) {
        self.state.set_faults(f);
    }

    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// The compute API advertises `major.minor` as its maximum from now on (2.1 at least) and
    /// refuses anything higher with Nova's 406. Also `PUT /_sim/compute {"max_microversion": "2.1"}`.
    pub fn set_max_microversion(&self, major: u32, minor: u32) {
        self.state.set_max_microversion((major, minor));
    }

    /// The project's compute quota from now on. Also `PUT /_sim/compute {"quota": {...}}`.
    pub fn set_quota(&self, quota: Quota) {
        self.state.set_quota(quota);
    }

    pub fn quota(&self) -> Quota {
        self.state.quota()
    }

    /// Every token issued so far is refused (401) from now on.
    pub fn expire_tokens(&self) {
        self.state.expire_tokens();
    }

    /// The live servers, oldest first, as `GET /servers/{id}` shows them (microversion 2.1),
    /// plus `boot_from_volume` and the create `request_body` for assertions.
    pub fn servers(&self) -> Vec<Value> {
        self.state.servers_snapshot()
    }

    /// The volumes Nova created to boot servers from, oldest first (`{"id", "size", "status",
    /// "server_id", "delete_on_termination"}`): one whose server was deleted stays only when its
    /// mapping did not ask for `delete_on_termination`. Also `GET /_sim/volumes`.
    pub fn volumes(&self) -> Vec<Value> {
        lock(&self.state.servers).volumes_snapshot()
    }

    /// Calls received, by key ("identity.auth", "image.list", "compute.create", ...). Every
    /// request is counted when it arrives, whatever its answer.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.state.calls).clone()
    }

    /// The query of every image list call so far (the last 10,000), in arrival order, as (name,
    /// value) pairs: which end a client paged from (`sort_dir`) and after which image (`marker`).
    pub fn image_list_queries(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.state.image_queries).clone()
    }

    /// The compute microversion last requested, normalised to the version alone ("2.79" for
    /// both `OpenStack-API-Version: compute 2.79` and `X-OpenStack-Nova-API-Version: 2.79`;
    /// "latest" as sent).
    pub fn last_compute_microversion(&self) -> Option<String> {
        lock(&self.state.microversion).clone()
    }

    /// Graceful shutdown (gives up after 5 s and aborts).
    pub async fn stop(self) {
        self.served.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------------

pub(crate) struct TokenRecord {
    pub(crate) expires_at: jiff::Timestamp,
    pub(crate) project_id: Option<String>,
}

pub(crate) struct SimState {
    pub(crate) config: SimConfig,
    pub(crate) base: String,
    faults: Mutex<Faults>,
    tokens: Mutex<HashMap<String, TokenRecord>>,
    pub(crate) servers: Mutex<nova::Servers>,
    calls: Mutex<BTreeMap<String, u64>>,
    pub(crate) microversion: Mutex<Option<String>>,
    max_microversion: Mutex<nova::Mv>,
    quota: Mutex<Quota>,
    /// Ids of images deleted since start (see [`Faults::delete_after_listing`]).
    pub(crate) deleted_images: Mutex<HashSet<String>>,
    image_queries: Mutex<Vec<Vec<(String, String)>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) type Shared = State<Arc<SimState>>;

impl SimState {
    fn new(config: SimConfig, base: String) -> Self {
        let max_microversion = config.max_microversion.max(nova::versions::MIN_VERSION);
        let quota = config.quota;
        SimState {
            max_microversion: Mutex::new(max_microversion),
            quota: Mutex::new(quota),
            config,
            base,
            faults: Mutex::new(Faults::default()),
            tokens: Mutex::new(HashMap::new()),
            servers: Mutex::new(nova::Servers::default()),
            calls: Mutex::new(BTreeMap::new()),
            microversion: Mutex::new(None),
            deleted_images: Mutex::new(HashSet::new()),
            image_queries: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn record_image_query(&self, query: &[(String, String)]) {
        let mut queries = lock(&self.image_queries);
        if queries.len() >= 10_000 {
            queries.remove(0);
        }
        queries.push(query.to_vec());
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub(crate) fn max_microversion(&self) -> nova::Mv {
        *lock(&self.max_microversion)
    }

    pub(crate) fn set_max_microversion(&self, mv: nova::Mv) {
        *lock(&self.max_microversion) = mv.max(nova::versions::MIN_VERSION);
    }

    pub(crate) fn quota(&self) -> Quota {
        *lock(&self.quota)
    }

    pub(crate) fn set_quota(&self, quota: Quota) {
        *lock(&self.quota) = quota;
    }

    fn set_faults(&self, f: Faults) {
        let never_active = f.never_active;
        *lock(&self.faults) = f;
        lock(&self.servers).apply_never_active(never_active);
    }

    fn expire_tokens(&self) {
        lock(&self.tokens).clear();
    }

    pub(crate) fn issue_token(&self, token: String, record: TokenRecord) {
        lock(&self.tokens).insert(token, record);
    }

    fn count(&self, key: &str) {
        *lock(&self.calls).entry(key.to_string()).or_default() += 1;
    }

    /// The project the (live, project-scoped) token in `X-Auth-Token` is scoped to.
    fn token_project(&self, headers: &HeaderMap) -> Option<String> {
        let token = headers.get("x-auth-token")?.to_str().ok()?;
        let tokens = lock(&self.tokens);
        let rec = tokens.get(token)?;
        if rec.expires_at <= jiff::Timestamp::now() {
            return None;
        }
        rec.project_id.clone()
    }

    /// Counts the call, applies latency and `fail_services`, and (when `auth`) checks the token.
    /// Returns the token's project id (empty when `auth` is false).
    pub(crate) async fn gate(
        &self,
        service: &str,
        key: &str,
        headers: &HeaderMap,
        auth: bool,
    ) -> Result<String, Response> {
        self.count(key);
        tracing::debug!(key, "pcd-sim call");
        let latency = lock(&self.faults).latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if self.faults().fail_services.iter().any(|s| s == service) {
            return Err(json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {
                    "code": 503,
                    "message": format!("The {service} service is unavailable (simulated fault)."),
                    "title": "Service Unavailable"
                }}),
            ));
        }
        if !auth {
            return Ok(String::new());
        }
        match self.token_project(headers) {
            Some(project) => Ok(project),
            None => Err(self.unauthorized()),
        }
    }

    /// Keystone's 401, with the `WWW-Authenticate` header keystonemiddleware sends.
    pub(crate) fn unauthorized(&self) -> Response {
        let mut resp = json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {
                "code": 401,
                "message": "The request you have made requires authentication.",
                "title": "Unauthorized"
            }}),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{}/identity\"", self.base)) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }

    fn servers_snapshot(&self) -> Vec<Value> {
        let servers = lock(&self.servers);
        servers.snapshot(self)
    }
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Formats like Keystone's token times: `2015-11-07T02:58:43.578887Z`.
pub(crate) fn rfc3339_micros(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// Formats like Nova/Glance times: `2013-09-03T04:01:32Z`.
pub(crate) fn rfc3339_secs(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn random_string(len: usize) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// Stable pseudo-random lowercase hex of `len` digits derived from `seed`.
pub(crate) fn hex_from(seed: &str, len: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(len);
    out
}

/// A stable UUID (8-4-4-4-12) derived from `seed`.
pub(crate) fn uuid_from(seed: &str) -> String {
    let h = hex_from(seed, 32);
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// Percent-encodes a query parameter value.
pub(crate) fn encode_query(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
