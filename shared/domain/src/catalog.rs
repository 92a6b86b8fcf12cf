//! What the ServiceNow form may offer: clouds and their images, flavors and networks, with labels a
//! person can read, ordered the way a dropdown should be, and cached per cloud.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

use crate::compute::LimitsCache;
use crate::error::{Error, Result};
use crate::ports::Cloud;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloudInfo {
    pub name: String,
    pub display_name: String,
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub label: String,
    pub min_disk_gb: u64,
    pub min_ram_mb: u64,
}

impl Image {
    pub fn new(id: String, name: String, min_disk_gb: u64, min_ram_mb: u64) -> Self {
        let label = if name.trim().is_empty() { id.clone() } else { name.clone() };
        Self { id, name, label, min_disk_gb, min_ram_mb }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub label: String,
    pub vcpus: u64,
    pub ram_mb: u64,
    pub disk_gb: u64,
}

impl Flavor {
    pub fn new(id: String, name: String, vcpus: u64, ram_mb: u64, disk_gb: u64) -> Self {
        let label = format!(
            "{name} — {vcpus} vCPU{}, {} RAM, {}",
            if vcpus == 1 { "" } else { "s" },
            format_ram(ram_mb),
            if disk_gb == 0 { "boot from volume".to_string() } else { format!("{disk_gb} GB disk") }
        );
        Self { id, name, label, vcpus, ram_mb, disk_gb }
    }
}

fn format_ram(ram_mb: u64) -> String {
    if ram_mb >= 1024 && ram_mb.is_multiple_of(1024) {
        format!("{} GiB", ram_mb / 1024)
    } else if ram_mb >= 1024 {
        format!("{:.1} GiB", ram_mb as f64 / 1024.0)
    } else {
        format!("{ram_mb} MiB")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub label: String,
    pub shared: bool,
    pub external: bool,
}

impl Network {
    pub fn new(id: String, name: String, shared: bool, external: bool) -> Self {
        let base = if name.trim().is_empty() { id.clone() } else { name.clone() };
        let label = match (shared, external) {
            (_, true) => format!("{base} (external)"),
            (true, false) => format!("{base} (shared)"),
            _ => base,
        };
        Self { id, name, label, shared, external }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloudOptions {
    pub cloud: String,
    pub images: Vec<Image>,
    pub flavors: Vec<Flavor>,
    pub networks: Vec<Network>,
}

impl CloudOptions {
    /// Orders the lists as the dropdowns show them: flavors smallest first (vCPUs, RAM, disk) like
    /// T-shirt sizes, images and networks by label.
    pub fn new(cloud: String, mut images: Vec<Image>, mut flavors: Vec<Flavor>, mut networks: Vec<Network>) -> Self {
        flavors.sort_by(|a, b| (a.vcpus, a.ram_mb, a.disk_gb, &a.name).cmp(&(b.vcpus, b.ram_mb, b.disk_gb, &b.name)));
        images.sort_by_cached_key(|i| (i.label.to_lowercase(), i.id.clone()));
        networks.sort_by_cached_key(|n| (n.label.to_lowercase(), n.id.clone()));
        Self { cloud, images, flavors, networks }
    }

    /// Finds an item by id first, then by exact name; a name shared by two items is ambiguous.
    pub fn image(&self, key: &str) -> Result<&Image, String> {
        find(&self.images, key, |i| (&i.id, &i.name))
    }
    pub fn flavor(&self, key: &str) -> Result<&Flavor, String> {
        find(&self.flavors, key, |f| (&f.id, &f.name))
    }
    pub fn network(&self, key: &str) -> Result<&Network, String> {
        find(&self.networks, key, |n| (&n.id, &n.name))
    }
}

fn find<'a, T>(items: &'a [T], key: &str, ids: impl Fn(&T) -> (&String, &String)) -> Result<&'a T, String> {
    if let Some(item) = items.iter().find(|i| ids(i).0 == key) {
        return Ok(item);
    }
    let mut named = items.iter().filter(|i| ids(i).1 == key);
    match (named.next(), named.next()) {
        (Some(item), None) => Ok(item),
        (Some(_), Some(_)) => Err(format!("\"{key}\" names more than one item; use its id")),
        (None, _) => Err(format!("\"{key}\" is not offered by this cloud")),
    }
}

struct CacheEntry {
    fetched: Instant,
    options: Arc<CloudOptions>,
}

/// The live catalog: the three lists of a cloud fetched in parallel and kept for `ttl`. One refresh
/// per cloud at a time, so a burst of cold requests costs PCD one round, not one per request.
pub struct Catalog {
    cloud: Arc<dyn Cloud>,
    ttl: Duration,
    entries: std::sync::RwLock<HashMap<String, CacheEntry>>,
    refresh_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Compute limits, kept more briefly than the lists and never longer.
    limits: LimitsCache,
}

impl Catalog {
    pub fn new(cloud: Arc<dyn Cloud>, ttl: Duration) -> Self {
        let limits = LimitsCache::new(ttl);
        Self { cloud, ttl, entries: Default::default(), refresh_locks: Default::default(), limits }
    }

    /// The clouds' compute limits, cached briefly (see `compute::LIMITS_TTL`).
    pub fn limits(&self) -> &LimitsCache {
        &self.limits
    }

    pub fn clouds(&self) -> Vec<CloudInfo> {
        self.cloud.clouds()
    }

    pub fn cloud(&self) -> &Arc<dyn Cloud> {
        &self.cloud
    }

    fn known(&self, cloud: &str) -> Result<()> {
        if self.cloud.clouds().iter().any(|c| c.name == cloud) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("cloud \"{cloud}\"")))
        }
    }

    fn cached(&self, cloud: &str) -> Option<Arc<CloudOptions>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(cloud).filter(|e| e.fetched.elapsed() < self.ttl).map(|e| e.options.clone())
    }

    pub async fn options(&self, cloud: &str) -> Result<Arc<CloudOptions>> {
        if let Some(hit) = self.cached(cloud) {
            return Ok(hit);
        }
        self.known(cloud)?;
        let lock = self.refresh_locks.lock().await.entry(cloud.to_string()).or_default().clone();
        let _refreshing = lock.lock().await;
        if let Some(hit) = self.cached(cloud) {
            return Ok(hit);
        }
        let (images, flavors, networks) =
            futures::try_join!(self.cloud.images(cloud), self.cloud.flavors(cloud), self.cloud.networks(cloud))?;
        let options = Arc::new(CloudOptions::new(cloud.to_string(), images, flavors, networks));
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cloud.to_string(), CacheEntry { fetched: Instant::now(), options: options.clone() });
        Ok(options)
    }

    /// Drops a cloud's cached lists, e.g. after intake found an item the form offered is gone.
    pub fn forget(&self, cloud: &str) {
        self.entries.write().unwrap_or_else(|e| e.into_inner()).remove(cloud);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_labels_read_like_a_person_would_say_them() {
        assert_eq!(
            Flavor::new("2".into(), "m1.small".into(), 1, 2048, 20).label,
            "m1.small — 1 vCPU, 2 GiB RAM, 20 GB disk"
        );
        assert_eq!(
            Flavor::new("1".into(), "m1.tiny".into(), 1, 512, 1).label,
            "m1.tiny — 1 vCPU, 512 MiB RAM, 1 GB disk"
        );
        assert_eq!(
            Flavor::new("9".into(), "v.large".into(), 4, 1536, 0).label,
            "v.large — 4 vCPUs, 1.5 GiB RAM, boot from volume"
        );
    }

    #[test]
    fn options_order_flavors_by_size_and_the_rest_by_label() {
        let flavors = vec![
            Flavor::new("3".into(), "m1.medium".into(), 2, 4096, 40),
            Flavor::new("1".into(), "m1.tiny".into(), 1, 512, 1),
            Flavor::new("2".into(), "m1.small".into(), 1, 2048, 20),
        ];
        let images = vec![Image::new("b".into(), "ubuntu".into(), 0, 0), Image::new("a".into(), "Alma".into(), 0, 0)];
        let nets = vec![
            Network::new("n2".into(), "prod".into(), false, false),
            Network::new("n1".into(), "dev".into(), true, false),
        ];
        let o = CloudOptions::new("c".into(), images, flavors, nets);
        assert_eq!(o.flavors.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["m1.tiny", "m1.small", "m1.medium"]);
        assert_eq!(o.images.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["Alma", "ubuntu"]);
        assert_eq!(o.networks.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["dev", "prod"]);
        assert_eq!(o.flavor("m1.small").unwrap().id, "2");
        assert_eq!(o.flavor("3").unwrap().name, "m1.medium");
        assert!(o.flavor("m9").is_err());
    }

    #[test]
    fn a_name_shared_by_two_items_is_ambiguous() {
        let images = vec![Image::new("a".into(), "same".into(), 0, 0), Image::new("b".into(), "same".into(), 0, 0)];
        let o = CloudOptions::new("c".into(), images, vec![], vec![]);
        assert!(o.image("same").unwrap_err().contains("more than one"));
        assert_eq!(o.image("b").unwrap().id, "b");
    }
}
