//! What Gatehouse asks of a cloud's compute service when it creates VMs, and the project quota
//! those VMs must fit in.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ports::Cloud;

/// The metadata key that ties a server to the Gatehouse request that created it; a retry adopts the
/// servers carrying its request id instead of creating more.
pub const REQUEST_ID_METADATA_KEY: &str = "gatehouse_request_id";
/// The metadata key that tells when Gatehouse retires a server (RFC 3339), for whoever looks at
/// the server in PCD. Set at create; an extension moves the request's time, not this note.
pub const RETIRE_AT_METADATA_KEY: &str = "gatehouse_retire_at";

/// The tag Gatehouse puts on the servers it creates (where the cloud's Nova takes tags), so that an
/// operator can list them (`openstack server list --tags gatehouse`).
pub const SERVER_TAG: &str = "gatehouse";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub name: String,
    pub image_id: String,
    pub flavor_id: String,
    pub network_id: String,
    pub metadata: BTreeMap<String, String>,
    /// Set when the flavor has no local disk (disk 0): boot from a new volume of this size built from
    /// the image (block_device_mapping_v2).
    pub boot_volume_gb: Option<u64>,
    /// A line an operator reads in the server's details. Sent where Nova takes it (2.19+); the
    /// metadata says the same in any case.
    pub description: Option<String>,
    /// Sent where Nova takes tags at create (2.52+).
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    pub id: String,
    pub name: String,
    /// Nova's status: BUILD, ACTIVE, ERROR, ...
    pub status: String,
    pub addresses: Vec<String>,
    /// Nova's `fault.message` when the server is in ERROR.
    pub fault: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A project's compute quota and what it uses, as Nova's `GET /limits` reports them
/// (`maxTotalInstances`, `maxTotalCores`, `maxTotalRAMSize` and their `total*Used`). A maximum of
/// `None` is unlimited (Nova says -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComputeLimits {
    pub max_instances: Option<u64>,
    pub max_cores: Option<u64>,
    pub max_ram_mb: Option<u64>,
    pub instances_used: u64,
    pub cores_used: u64,
    pub ram_used_mb: u64,
}

/// What some servers take of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    pub instances: u64,
    pub cores: u64,
    pub ram_mb: u64,
}

impl Footprint {
    /// `count` servers of a flavor with `vcpus` and `ram_mb`.
    pub fn of(count: u64, vcpus: u64, ram_mb: u64) -> Self {
        Footprint { instances: count, cores: count.saturating_mul(vcpus), ram_mb: count.saturating_mul(ram_mb) }
    }

    pub fn plus(self, other: Footprint) -> Self {
        Footprint {
            instances: self.instances.saturating_add(other.instances),
            cores: self.cores.saturating_add(other.cores),
            ram_mb: self.ram_mb.saturating_add(other.ram_mb),
        }
    }

    fn get(&self, resource: Resource) -> u64 {
        match resource {
            Resource::Cores => self.cores,
            Resource::Instances => self.instances,
            Resource::Ram => self.ram_mb,
        }
    }
}

/// A quota'd resource, in Nova's (alphabetical) order and with Nova's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Cores,
    Instances,
    Ram,
}

impl Resource {
    pub const ALL: [Resource; 3] = [Resource::Cores, Resource::Instances, Resource::Ram];

    /// Nova's name in quota messages.
    pub fn nova_name(self) -> &'static str {
        match self {
            Resource::Cores => "cores",
            Resource::Instances => "instances",
            Resource::Ram => "ram",
        }
    }

    /// `8 vCPUs`, `1 instance`, `4096 MiB of RAM`.
    fn amount(self, n: u64) -> String {
        let plural = if n == 1 { "" } else { "s" };
        match self {
            Resource::Cores => format!("{n} vCPU{plural}"),
            Resource::Instances => format!("{n} instance{plural}"),
            Resource::Ram => format!("{n} MiB of RAM"),
        }
    }

    /// The unit after a bare number: none for counts, ` MiB` for RAM.
    fn unit(self) -> &'static str {
        match self {
            Resource::Cores => "",
            Resource::Instances => "",
            Resource::Ram => " MiB",
        }
    }
}

impl ComputeLimits {
    fn max(&self, resource: Resource) -> Option<u64> {
        match resource {
            Resource::Cores => self.max_cores,
            Resource::Instances => self.max_instances,
            Resource::Ram => self.max_ram_mb,
        }
    }

    fn used(&self, resource: Resource) -> u64 {
        match resource {
            Resource::Cores => self.cores_used,
            Resource::Instances => self.instances_used,
            Resource::Ram => self.ram_used_mb,
        }
    }

    /// Every resource `wanted` does not fit in, once `held` (promised to others, not yet in use) is
    /// set aside; empty when it fits. Unlimited resources always fit.
    pub fn shortfalls(&self, held: Footprint, wanted: Footprint) -> Vec<Shortfall> {
        Resource::ALL
            .into_iter()
            .filter_map(|resource| {
                let max = self.max(resource)?;
                let short = Shortfall {
                    resource,
                    requested: wanted.get(resource),
                    used: self.used(resource),
                    held: held.get(resource),
                    max,
                };
                (short.requested > short.left()).then_some(short)
            })
            .collect()
    }

    /// How many more servers of `one` fit, once `held` is set aside; `None` when nothing limits it.
    pub fn how_many_fit(&self, held: Footprint, one: Footprint) -> Option<u64> {
        Resource::ALL
            .into_iter()
            .filter_map(|resource| {
                let max = self.max(resource)?;
                let per_server = one.get(resource);
                let left = max.saturating_sub(self.used(resource).saturating_add(held.get(resource)));
                (per_server > 0).then(|| left / per_server)
            })
            .min()
    }
}

/// One resource a demand does not fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    pub resource: Resource,
    pub requested: u64,
    /// In use now, by Nova's count.
    pub used: u64,
    /// Promised to requests that are approved but not yet built.
    pub held: u64,
    pub max: u64,
}

impl Shortfall {
    pub fn left(&self) -> u64 {
        self.max.saturating_sub(self.used.saturating_add(self.held))
    }

    /// For a person: `needs 8 vCPUs, 4 of 20 left (12 in use, 4 held for approved requests not
    /// yet built)`.
    pub fn explain(&self) -> String {
        let unit = self.resource.unit();
        let mut out = format!(
            "needs {}, {} of {}{unit} left ({}{unit} in use",
            self.resource.amount(self.requested),
            self.left(),
            self.max,
            self.used
        );
        if self.held > 0 {
            out.push_str(&format!(", {}{unit} held for approved requests not yet built", self.held));
        }
        out.push(')');
        out
    }
}

/// Nova's own words for a refused create (`TooManyInstances` in nova/exception.py, built by
/// `get_over_quota_detail` in nova/compute/utils.py: resources sorted, values joined by ", "), so
/// a refusal found before the create reads like one Nova gives:
/// `Quota exceeded for cores, ram: Requested 8, 16384, but already used 16, 40960 of 20, 51200 cores, ram`.
pub fn nova_quota_message(shortfalls: &[Shortfall]) -> String {
    let mut sorted = shortfalls.to_vec();
    sorted.sort_by_key(|s| s.resource);
    let join = |f: &dyn Fn(&Shortfall) -> String| sorted.iter().map(f).collect::<Vec<_>>().join(", ");
    let overs = join(&|s| s.resource.nova_name().to_string());
    format!(
        "Quota exceeded for {overs}: Requested {}, but already used {} of {} {overs}",
        join(&|s| s.requested.to_string()),
        join(&|s| s.used.to_string()),
        join(&|s| s.max.to_string())
    )
}

/// How long compute limits are kept at most: they move with every server anyone in the project
/// creates or deletes, so only a burst of intakes shares one read.
pub const LIMITS_TTL: Duration = Duration::from_secs(30);

/// Compute limits per cloud, and what approved requests not yet built hold of them, kept for a
/// short while: a burst of intakes shares one read of each. Both are dropped when Gatehouse claims
/// or creates something on the cloud (in this process); elsewhere they age out within
/// [`LIMITS_TTL`], and the check before create catches what slipped through.
pub struct LimitsCache {
    ttl: Duration,
    limits: std::sync::Mutex<HashMap<String, (Instant, ComputeLimits)>>,
    held: std::sync::Mutex<HashMap<String, (Instant, Footprint)>>,
}

fn fresh<T: Copy>(map: &std::sync::Mutex<HashMap<String, (Instant, T)>>, key: &str, ttl: Duration) -> Option<T> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| *v)
}

fn keep<T>(map: &std::sync::Mutex<HashMap<String, (Instant, T)>>, key: &str, value: T) {
    map.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_string(), (Instant::now(), value));
}

impl LimitsCache {
    /// Keeps limits for `ttl`, capped at [`LIMITS_TTL`].
    pub fn new(ttl: Duration) -> Self {
        LimitsCache { ttl: ttl.min(LIMITS_TTL), limits: Default::default(), held: Default::default() }
    }

    /// The cloud's limits from the cache, or read from `port` and kept.
    pub async fn limits(&self, port: &dyn Cloud, cloud: &str) -> Result<ComputeLimits> {
        if let Some(hit) = fresh(&self.limits, cloud, self.ttl) {
            return Ok(hit);
        }
        let read = port.limits(cloud).await?;
        keep(&self.limits, cloud, read);
        Ok(read)
    }

    /// What approved requests not yet built hold on `cloud`, if counted a moment ago.
    pub fn held(&self, cloud: &str) -> Option<Footprint> {
        fresh(&self.held, cloud, self.ttl)
    }

    pub fn keep_held(&self, cloud: &str, held: Footprint) {
        keep(&self.held, cloud, held);
    }

    /// Drops what is kept for `cloud`: Gatehouse just claimed or created something there.
    pub fn forget(&self, cloud: &str) {
        self.limits.lock().unwrap_or_else(|e| e.into_inner()).remove(cloud);
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(cloud);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ComputeLimits {
        ComputeLimits {
            max_instances: Some(10),
            max_cores: Some(20),
            max_ram_mb: Some(51200),
            instances_used: 4,
            cores_used: 12,
            ram_used_mb: 24576,
        }
    }

    #[test]
    fn what_fits_has_no_shortfall() {
        assert!(limits().shortfalls(Footprint::default(), Footprint::of(2, 4, 8192)).is_empty());
        assert!(ComputeLimits::default().shortfalls(Footprint::default(), Footprint::of(1, 1, 1)).is_empty());
    }

    #[test]
    fn approved_requests_not_yet_built_hold_their_share() {
        let held = Footprint::of(1, 4, 8192);
        assert!(limits().shortfalls(Footprint::default(), Footprint::of(2, 4, 8192)).is_empty(), "fits alone");
        let short = limits().shortfalls(held, Footprint::of(2, 4, 8192));
        assert_eq!(short.len(), 1, "{short:?}");
        assert_eq!(short[0].resource, Resource::Cores);
        assert_eq!(
            short[0].explain(),
            "needs 8 vCPUs, 4 of 20 left (12 in use, 4 held for approved requests not yet built)"
        );
        assert_eq!(limits().how_many_fit(held, Footprint::of(1, 4, 8192)), Some(1));
    }

    #[test]
    fn unlimited_resources_never_fall_short() {
        let unlimited = ComputeLimits { max_cores: None, max_ram_mb: None, ..limits() };
        let short = unlimited.shortfalls(Footprint::default(), Footprint::of(7, 64, 1 << 20));
        assert_eq!(short.iter().map(|s| s.resource).collect::<Vec<_>>(), [Resource::Instances]);
        assert_eq!(short[0].explain(), "needs 7 instances, 6 of 10 left (4 in use)");
        assert_eq!(ComputeLimits::default().how_many_fit(Footprint::default(), Footprint::of(1, 1, 1)), None);
    }

    #[test]
    fn over_use_leaves_nothing_rather_than_wrapping() {
        let over = ComputeLimits { cores_used: 25, ..limits() };
        let short = over.shortfalls(Footprint::default(), Footprint::of(1, 1, 512));
        assert_eq!(short[0].left(), 0);
        assert_eq!(short[0].explain(), "needs 1 vCPU, 0 of 20 left (25 in use)");
    }

    #[test]
    fn the_refusal_reads_as_novas() {
        let short = limits().shortfalls(Footprint::default(), Footprint::of(2, 8, 16384));
        assert_eq!(
            nova_quota_message(&short),
            "Quota exceeded for cores, ram: Requested 16, 32768, but already used 12, 24576 of 20, 51200 cores, ram"
        );
        let one = limits().shortfalls(Footprint::default(), Footprint::of(7, 0, 0));
        assert_eq!(
            nova_quota_message(&one),
            "Quota exceeded for instances: Requested 7, but already used 4 of 10 instances"
        );
    }

    #[test]
    fn ram_reads_in_mib() {
        let short = limits().shortfalls(Footprint::default(), Footprint::of(1, 1, 32768));
        assert_eq!(short[0].explain(), "needs 32768 MiB of RAM, 26624 of 51200 MiB left (24576 MiB in use)");
    }

    /// A cloud that only answers `limits`, counting the reads.
    struct CountingCloud(std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl Cloud for CountingCloud {
        fn clouds(&self) -> Vec<crate::catalog::CloudInfo> {
            vec![]
        }
        async fn images(&self, _: &str) -> Result<Vec<crate::catalog::Image>> {
            Err(crate::Error::internal_msg("not used"))
        }
        async fn flavors(&self, _: &str) -> Result<Vec<crate::catalog::Flavor>> {
            Err(crate::Error::internal_msg("not used"))
        }
        async fn networks(&self, _: &str) -> Result<Vec<crate::catalog::Network>> {
            Err(crate::Error::internal_msg("not used"))
        }
        async fn create_server(&self, _: &str, _: &ServerSpec) -> Result<String> {
            Err(crate::Error::internal_msg("not used"))
        }
        async fn server(&self, _: &str, _: &str) -> Result<Option<ServerState>> {
            Err(crate::Error::internal_msg("not used"))
        }
        async fn servers_named(&self, _: &str, _: &str) -> Result<Vec<ServerState>> {
            Err(crate::Error::internal_msg("not used"))
        }
        async fn delete_server(&self, _: &str, _: &str) -> Result<()> {
            Err(crate::Error::internal_msg("not used"))
        }
        async fn limits(&self, _: &str) -> Result<ComputeLimits> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(limits())
        }
        async fn set_server_metadata(&self, _: &str, _: &str, _: &str, _: &str) -> Result<()> {
            Err(crate::Error::internal_msg("not used"))
        }
    }

    #[tokio::test]
    async fn limits_are_kept_briefly_per_cloud_and_dropped_on_forget() {
        let port = CountingCloud(Default::default());
        let reads = || port.0.load(std::sync::atomic::Ordering::SeqCst);
        let cache = LimitsCache::new(Duration::from_secs(3600));
        assert_eq!(cache.ttl, LIMITS_TTL, "never longer than LIMITS_TTL");
        assert_eq!(cache.limits(&port, "a").await.unwrap(), limits());
        cache.limits(&port, "a").await.unwrap();
        assert_eq!(reads(), 1);
        cache.limits(&port, "b").await.unwrap();
        assert_eq!(reads(), 2);
        cache.keep_held("a", Footprint::of(1, 2, 3));
        assert_eq!(cache.held("a"), Some(Footprint::of(1, 2, 3)));
        cache.forget("a");
        assert_eq!(cache.held("a"), None);
        cache.limits(&port, "a").await.unwrap();
        assert_eq!(reads(), 3);

        let short = LimitsCache::new(Duration::ZERO);
        short.limits(&port, "a").await.unwrap();
        short.limits(&port, "a").await.unwrap();
        assert_eq!(reads(), 5, "never longer than the catalog's cache either");
    }
}
