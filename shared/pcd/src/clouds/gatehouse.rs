//! A cloud's `gatehouse:` key in clouds.yaml: Gatehouse-only settings openstacksdk ignores (it
//! keeps unknown keys of a cloud as they are). Today: the cloud's own lease limits, each narrowing
//! the global setting of the same name (DESIGN.md "Provisioning", Leases); whether they narrow is
//! checked at start-up against the global settings (`LeaseSettings::narrow`).
//!
//! ```yaml
//! clouds:
//!   pcd-east:
//!     auth: {...}
//!     gatehouse:
//!       max_lease_days: 30       # at most GATEHOUSE_MAX_LEASE_DAYS
//!       min_lease_secs: 7200     # at least GATEHOUSE_MIN_LEASE_SECS
//!       default_lease_days: 14   # at most the two above's longest, and GATEHOUSE_DEFAULT_LEASE_DAYS
//! ```

use std::time::Duration;

use domain::config::CloudLeaseLimits;
use serde_yaml::Value;

use super::{CloudsError, normalised, scalar};

const MAX_LEASE_DAYS: &str = "max_lease_days";
const MIN_LEASE_SECS: &str = "min_lease_secs";
const DEFAULT_LEASE_DAYS: &str = "default_lease_days";

/// The lease limits under the cloud's `gatehouse:` key (none when the key is absent).
pub(super) fn lease_limits(cloud: &str, gatehouse: Option<&Value>) -> Result<CloudLeaseLimits, CloudsError> {
    let map = match gatehouse {
        None | Some(Value::Null) => return Ok(CloudLeaseLimits::default()),
        Some(Value::Mapping(map)) => normalised(map),
        Some(_) => return Err(CloudsError::cloud(cloud, "gatehouse is not a map")),
    };
    let mut limits = CloudLeaseLimits::default();
    for (key, value) in map {
        let number = || {
            whole_number(value).ok_or_else(|| {
                CloudsError::cloud(cloud, format_args!("gatehouse.{key} must be a whole number above 0"))
            })
        };
        match key.as_str() {
            MAX_LEASE_DAYS => limits.max_days = Some(days(number()?, cloud, &key)?),
            DEFAULT_LEASE_DAYS => limits.default_days = Some(days(number()?, cloud, &key)?),
            MIN_LEASE_SECS => limits.min = Some(Duration::from_secs(number()?)),
            _ => {
                return Err(CloudsError::cloud(
                    cloud,
                    format_args!(
                        "gatehouse.{key} is not a Gatehouse setting ({MAX_LEASE_DAYS}, {MIN_LEASE_SECS} or {DEFAULT_LEASE_DAYS})"
                    ),
                ));
            }
        }
    }
    Ok(limits)
}

/// `30` or `"30"`, above 0.
fn whole_number(value: &Value) -> Option<u64> {
    scalar(value)?.trim().parse().ok().filter(|n| *n > 0)
}

fn days(n: u64, cloud: &str, key: &str) -> Result<u32, CloudsError> {
    u32::try_from(n).map_err(|_| CloudsError::cloud(cloud, format_args!("gatehouse.{key} is too large")))
}

#[cfg(test)]
mod tests {
    use super::super::CloudsFile;
    use super::*;

    fn limits(gatehouse: &str) -> Result<CloudLeaseLimits, String> {
        let yaml = format!(
            "clouds:\n  pcd-east:\n    auth:\n      auth_url: https://k/v3\n      user_id: u\n      password: p\n      \
             project_id: x\n{gatehouse}"
        );
        CloudsFile::parse(&yaml).map(|f| f.clouds()[0].leases.clone()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_cloud_may_set_its_own_lease_limits() {
        assert_eq!(limits(""), Ok(CloudLeaseLimits::default()));
        assert_eq!(limits("    gatehouse:\n"), Ok(CloudLeaseLimits::default()));
        assert_eq!(
            limits(
                "    gatehouse:\n      max_lease_days: 30\n      min-lease-secs: \"7200\"\n      default_lease_days: 14\n"
            ),
            Ok(CloudLeaseLimits { max_days: Some(30), min: Some(Duration::from_secs(7200)), default_days: Some(14) })
        );
    }

    #[test]
    fn bad_lease_limits_name_the_cloud_and_the_key() {
        let at = "clouds.yaml: cloud \"pcd-east\":";
        for (gatehouse, problem) in [
            ("    gatehouse: 30\n", "gatehouse is not a map"),
            ("    gatehouse:\n      max_lease_days: 0\n", "gatehouse.max_lease_days must be a whole number above 0"),
            ("    gatehouse:\n      min_lease_secs: 1h\n", "gatehouse.min_lease_secs must be a whole number above 0"),
            (
                "    gatehouse:\n      default_lease_days: [7]\n",
                "gatehouse.default_lease_days must be a whole number above 0",
            ),
            ("    gatehouse:\n      max_lease_days: 4294967296\n", "gatehouse.max_lease_days is too large"),
            (
                "    gatehouse:\n      max_days: 30\n",
                "gatehouse.max_days is not a Gatehouse setting (max_lease_days, min_lease_secs or default_lease_days)",
            ),
        ] {
            assert_eq!(limits(gatehouse), Err(format!("{at} {problem}")), "{gatehouse}");
        }
    }
}
