//! Lease settings (DESIGN.md "Provisioning", Leases): how long servers may live, when their
//! requester is reminded, and how often the lease may be extended without approval.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, Settings, bad};

/// What intake, the sweeper and the Extend link apply to leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// `GATEHOUSE_DEFAULT_LEASE_DAYS`: the lease of a request that asks for none (default: none,
    /// servers live until retired by hand).
    pub default_days: Option<u32>,
    /// `GATEHOUSE_MAX_LEASE_DAYS` (default 365): the longest lease, and how far an extension may reach.
    pub max_days: u32,
    /// `GATEHOUSE_MIN_LEASE_SECS` (default 3600): how far ahead an explicit `retire_at` must be.
    pub min: Duration,
    /// `GATEHOUSE_LEASE_REMINDERS` (default `7d,1d`): how long before the end the requester is
    /// mailed an Extend link, largest first.
    pub reminders: Vec<Duration>,
    /// `GATEHOUSE_MAX_EXTENSIONS` (default 2): extensions allowed without approval.
    pub max_extensions: u32,
    /// `GATEHOUSE_MAX_LEASE_DAYS_BY_CLOUD` (`pcd-east=30,pcd-west=90`): clouds whose longest lease
    /// is shorter than `max_days` (a cloud may narrow the limit, never widen it).
    pub max_days_by_cloud: BTreeMap<String, u32>,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            default_days: None,
            max_days: 365,
            min: Duration::from_secs(3600),
            reminders: vec![Duration::from_secs(7 * 86_400), Duration::from_secs(86_400)],
            max_extensions: 2,
            max_days_by_cloud: BTreeMap::new(),
        }
    }
}

/// A duration as people write it: `30` or `30s`, `15m`, `2h`, `7d`.
fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: u64 = number.trim().parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0 && secs <= 366 * 86_400).then(|| Duration::from_secs(secs))
}

impl LeaseSettings {
    /// The settings as they apply on `cloud`: its own longest lease, and the default lease cut
    /// to it (a default longer than the cloud allows becomes the cloud's longest).
    pub fn for_cloud(&self, cloud: &str) -> LeaseSettings {
        let max_days = self.cloud_limit(cloud).unwrap_or(self.max_days);
        LeaseSettings {
            max_days,
            default_days: self.default_days.map(|d| d.min(max_days)),
            max_days_by_cloud: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// The cloud's own longest lease, when it has one shorter than `max_days`.
    pub fn cloud_limit(&self, cloud: &str) -> Option<u32> {
        self.max_days_by_cloud.get(cloud).copied().filter(|days| *days < self.max_days)
    }

    pub fn load<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<LeaseSettings, ConfigError> {
        const MAX: &str = "GATEHOUSE_MAX_LEASE_DAYS";
        const DEFAULT: &str = "GATEHOUSE_DEFAULT_LEASE_DAYS";
        const REMINDERS: &str = "GATEHOUSE_LEASE_REMINDERS";
        const BY_CLOUD: &str = "GATEHOUSE_MAX_LEASE_DAYS_BY_CLOUD";
        let max_days = s.number(MAX, 365, 1..=3650)? as u32;
        let default_days = match s.optional(DEFAULT) {
            None => None,
            Some(_) => Some(s.number(DEFAULT, 0, 1..=u64::from(max_days))? as u32),
        };
        let mut reminders = match s.optional(REMINDERS) {
            None => LeaseSettings::default().reminders,
            Some(list) if list.eq_ignore_ascii_case("none") => vec![],
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    duration(p)
                        .ok_or_else(|| bad(REMINDERS, format!("{p:?} is not a duration like 7d, 12h, 30m or 45s")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        reminders.sort_by(|a, b| b.cmp(a));
        reminders.dedup();
        let mut max_days_by_cloud = BTreeMap::new();
        if let Some(spec) = s.optional(BY_CLOUD) {
            for part in spec.split([',', ';']).map(str::trim).filter(|p| !p.is_empty()) {
                let problem = || bad(BY_CLOUD, format!("{part:?} is not cloud=days (days from 1 to {max_days})"));
                let (cloud, days) = part.split_once('=').ok_or_else(problem)?;
                let days: u32 = days.trim().parse().map_err(|_| problem())?;
                if cloud.trim().is_empty() || !(1..=max_days).contains(&days) {
                    return Err(problem());
                }
                max_days_by_cloud.insert(cloud.trim().to_string(), days);
            }
        }
        Ok(LeaseSettings {
            default_days,
            max_days,
            min: s.seconds("GATEHOUSE_MIN_LEASE_SECS", 3600)?,
            reminders,
            max_extensions: s.number("GATEHOUSE_MAX_EXTENSIONS", 2, 0..=100)? as u32,
            max_days_by_cloud,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&'static str, &'static str)]) -> Result<LeaseSettings, ConfigError> {
        let pairs = pairs.to_vec();
        LeaseSettings::load(&Settings::new(move |k| {
            pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string())
        }))
    }

    #[test]
    fn defaults_follow_the_design() {
        assert_eq!(load(&[]).unwrap(), LeaseSettings::default());
    }

    #[test]
    fn reminders_are_durations_largest_first() {
        let l = load(&[("GATEHOUSE_LEASE_REMINDERS", "3s, 1d,12h,3")]).unwrap();
        assert_eq!(l.reminders, vec![Duration::from_secs(86_400), Duration::from_secs(43_200), Duration::from_secs(3)]);
        assert!(load(&[("GATEHOUSE_LEASE_REMINDERS", "none")]).unwrap().reminders.is_empty());
        let err = load(&[("GATEHOUSE_LEASE_REMINDERS", "7 days")]).unwrap_err();
        assert_eq!(err.setting, "GATEHOUSE_LEASE_REMINDERS");
    }

    #[test]
    fn the_default_lease_may_not_pass_the_maximum() {
        let err = load(&[("GATEHOUSE_MAX_LEASE_DAYS", "30"), ("GATEHOUSE_DEFAULT_LEASE_DAYS", "90")]).unwrap_err();
        assert_eq!(err.setting, "GATEHOUSE_DEFAULT_LEASE_DAYS");
        let l = load(&[("GATEHOUSE_DEFAULT_LEASE_DAYS", "30"), ("GATEHOUSE_MIN_LEASE_SECS", "2")]).unwrap();
        assert_eq!((l.default_days, l.min), (Some(30), Duration::from_secs(2)));
    }

    #[test]
    fn a_cloud_may_narrow_the_longest_lease_and_the_default_with_it() {
        let l = load(&[
            ("GATEHOUSE_MAX_LEASE_DAYS", "90"),
            ("GATEHOUSE_DEFAULT_LEASE_DAYS", "60"),
            ("GATEHOUSE_MAX_LEASE_DAYS_BY_CLOUD", "pcd-east=30; pcd-west = 90,"),
        ])
        .unwrap();
        assert_eq!(l.cloud_limit("pcd-east"), Some(30));
        assert_eq!(l.cloud_limit("pcd-west"), None, "the same as everywhere: no limit of its own");
        let east = l.for_cloud("pcd-east");
        assert_eq!((east.max_days, east.default_days), (30, Some(30)));
        let other = l.for_cloud("elsewhere");
        assert_eq!((other.max_days, other.default_days), (90, Some(60)));
        for bad in ["pcd-east", "pcd-east=0", "pcd-east=91", "=30", "pcd-east=many"] {
            let err =
                load(&[("GATEHOUSE_MAX_LEASE_DAYS", "90"), ("GATEHOUSE_MAX_LEASE_DAYS_BY_CLOUD", bad)]).unwrap_err();
            assert_eq!(err.setting, "GATEHOUSE_MAX_LEASE_DAYS_BY_CLOUD", "{bad}");
        }
    }
}
