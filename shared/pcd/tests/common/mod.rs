//! What the integration tests share: a simulator per test and clouds.yaml documents for it.

#![allow(dead_code)]

#[path = "../../../../tests/support/http_stub.rs"]
pub mod stub;

use std::time::Duration;

use gatehouse_pcd::{CloudsFile, Pcd};
use pcd_sim::{PcdSim, SimConfig};

pub const CLOUD: &str = "pcd-east";

pub async fn sim() -> PcdSim {
    PcdSim::start("127.0.0.1:0".parse().unwrap(), SimConfig::default()).await.expect("pcd-sim starts")
}

/// A client for `yaml` with a generous timeout.
pub fn pcd(yaml: &str) -> Pcd {
    pcd_with_timeout(yaml, Duration::from_secs(10))
}

pub fn pcd_with_timeout(yaml: &str, timeout: Duration) -> Pcd {
    Pcd::new(CloudsFile::parse(yaml).expect("clouds.yaml parses"), timeout, false).expect("client builds")
}

/// The simulator's own clouds.yaml: password auth by names, region set.
pub fn password_by_names(sim: &PcdSim) -> String {
    sim.clouds_yaml(CLOUD)
}

/// `auth` lines (indented by six) under one cloud named [`CLOUD`], plus cloud-level `extra` lines
/// (indented by four).
pub fn cloud_yaml(auth: &[(&str, &str)], extra: &[(&str, &str)]) -> String {
    let mut out = format!("clouds:\n  {CLOUD}:\n    auth:\n");
    for (k, v) in auth {
        out.push_str(&format!("      {k}: \"{v}\"\n"));
    }
    for (k, v) in extra {
        out.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    out
}
