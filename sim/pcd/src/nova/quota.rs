//! The project's compute quota: `GET /limits` in the published sample's shape (as the requested
//! microversion shows it), with use counted from the live servers; and Nova's refusal of a create
//! that does not fit (403 `forbidden`, `TooManyInstances` from nova/exception.py with the details
//! of `get_over_quota_detail` in nova/compute/utils.py; https://docs.openstack.org/nova/latest/user/quotas.html).

use serde::{Deserialize, Serialize};

use super::*;

/// A project's compute quota; -1 is unlimited, as in Nova. Missing JSON fields take the demo's
/// values, which are large enough for the demo and its tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quota {
    pub instances: i64,
    pub cores: i64,
    /// MB.
    pub ram: i64,
}

impl Default for Quota {
    fn default() -> Self {
        Quota { instances: 500, cores: 2000, ram: 4 * 1024 * 1024 }
    }
}

/// What the live servers use, whatever their state: Nova counts a server from its create on.
struct Usage {
    instances: i64,
    cores: i64,
    ram: i64,
}

fn usage(servers: &Servers) -> Usage {
    let sum = |f: fn(&SimFlavor) -> u64| servers.list.iter().map(|s| f(&s.flavor)).sum::<u64>();
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Usage { instances: as_i64(servers.list.len() as u64), cores: as_i64(sum(|f| f.vcpus)), ram: as_i64(sum(|f| f.ram)) }
}

/// `GET /limits`. The 2.36 sample is the base; below 2.36 the network limits are there too (with
/// Nova's default values), from 2.39 `maxImageMeta` is gone, from 2.57 the personality limits
/// (`FILTERED_LIMITS_2_36` / `_2_57` in nova/api/openstack/compute/limits.py).
pub(super) fn limits(st: &SimState, mv: Mv) -> Response {
    let quota = st.quota();
    let used = usage(&lock(&st.servers));
    let mut body = samples::LIMITS.clone();
    let Some(absolute) = body["limits"]["absolute"].as_object_mut() else {
        return fault(StatusCode::INTERNAL_SERVER_ERROR, "the limits sample has no absolute limits");
    };
    for (key, value) in [
        ("maxTotalInstances", quota.instances),
        ("maxTotalCores", quota.cores),
        ("maxTotalRAMSize", quota.ram),
        ("totalInstancesUsed", used.instances),
        ("totalCoresUsed", used.cores),
        ("totalRAMUsed", used.ram),
    ] {
        absolute.insert(key.into(), json!(value));
    }
    if mv < (2, 36) {
        for (key, value) in [
            ("maxSecurityGroupRules", 20),
            ("maxSecurityGroups", 10),
            ("maxTotalFloatingIps", 10),
            ("totalFloatingIpsUsed", 0),
            ("totalSecurityGroupsUsed", 0),
        ] {
            absolute.insert(key.into(), json!(value));
        }
    }
    if mv >= (2, 39) {
        absolute.remove("maxImageMeta");
    }
    if mv >= (2, 57) {
        absolute.remove("maxPersonality");
        absolute.remove("maxPersonalitySize");
    }
    json_response(StatusCode::OK, body)
}

/// One resource of a create, as Nova's quota check weighs it.
struct Over {
    name: &'static str,
    requested: i64,
    used: i64,
    allowed: i64,
}

/// Nova's 403 when one more server of `flavor` does not fit, else `None`. Called with the server
/// list locked, so that two creates cannot both take the last room.
pub(super) fn refuse_over_quota(quota: Quota, servers: &Servers, flavor: &SimFlavor) -> Option<Response> {
    let used = usage(servers);
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    // Nova's resource names, sorted as Nova sorts them.
    let checks = [
        Over { name: "cores", requested: as_i64(flavor.vcpus), used: used.cores, allowed: quota.cores },
        Over { name: "instances", requested: 1, used: used.instances, allowed: quota.instances },
        Over { name: "ram", requested: as_i64(flavor.ram), used: used.ram, allowed: quota.ram },
    ];
    let overs: Vec<&Over> =
        checks.iter().filter(|o| o.allowed >= 0 && o.used.saturating_add(o.requested) > o.allowed).collect();
    if overs.is_empty() {
        return None;
    }
    let join = |f: fn(&Over) -> String| overs.iter().map(|o| f(o)).collect::<Vec<_>>().join(", ");
    let names = join(|o| o.name.to_string());
    let message = format!(
        "Quota exceeded for {names}: Requested {}, but already used {} of {} {names}",
        join(|o| o.requested.to_string()),
        join(|o| o.used.to_string()),
        join(|o| o.allowed.to_string())
    );
    Some(fault(StatusCode::FORBIDDEN, message))
}
