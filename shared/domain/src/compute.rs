//! What Gatehouse asks of a cloud's compute service when it creates VMs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metadata key that ties a server to the Gatehouse request that created it; a retry adopts the
/// servers carrying its request id instead of creating more.
pub const REQUEST_ID_METADATA_KEY: &str = "gatehouse_request_id";

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
