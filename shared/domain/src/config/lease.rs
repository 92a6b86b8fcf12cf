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
    /// What clouds narrow (clouds.yaml, a cloud's `gatehouse:` key), set at start-up by
    /// [`LeaseSettings::narrow`], which checks it narrows.
    pub(crate) by_cloud: BTreeMap<String, CloudLeaseLimits>,
}

/// A cloud's own lease limits (clouds.yaml, `clouds.<name>.gatehouse`): each absent one is the
/// global setting's, each given one may only narrow it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudLeaseLimits {
    /// `max_lease_days`: at most `GATEHOUSE_MAX_LEASE_DAYS`.
    pub max_days: Option<u32>,
    /// `min_lease_secs`: at least `GATEHOUSE_MIN_LEASE_SECS`.
    pub min: Option<Duration>,
    /// `default_lease_days`: at most the cloud's longest lease and `GATEHOUSE_DEFAULT_LEASE_DAYS`.
    pub default_days: Option<u32>,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            default_days: None,
            max_days: 365,
            min: Duration::from_secs(3600),
            reminders: vec![Duration::from_secs(7 * 86_400), Duration::from_secs(86_400)],
            max_extensions: 2,
            by_cloud: BTreeMap::new(),
        }
    }
}

/// A duration as people write it: `30` or `30s`, `15m`, `2h`, `7d`.
pub(crate) fn duration(text: &str) -> Option<Duration> {
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
    /// The settings as they apply on `cloud`: its own limits where it has them, and a default
    /// lease longer than the cloud's longest cut to it.
    pub fn for_cloud(&self, cloud: &str) -> LeaseSettings {
        let own = self.by_cloud.get(cloud).cloned().unwrap_or_default();
        let max_days = own.max_days.unwrap_or(self.max_days);
        LeaseSettings {
            max_days,
            min: own.min.unwrap_or(self.min),
            default_days: own.default_days.or(self.default_days).map(|d| d.min(max_days)),
            by_cloud: BTreeMap::new(),
            ..self.clone()
        }
    }

    /// Whether `cloud` has limits of its own.
    pub fn narrowed_on(&self, cloud: &str) -> bool {
        self.by_cloud.contains_key(cloud)
    }

    /// Gives `cloud` its own limits (start-up, from clouds.yaml). A limit wider than the global
    /// setting, or a default longer than the cloud's longest lease, is an error naming the cloud
    /// and the key.
    pub fn narrow(&mut self, cloud: &str, limits: CloudLeaseLimits) -> Result<(), ConfigError> {
        let key = |k: &str| format!("clouds.yaml: cloud \"{cloud}\": gatehouse.{k}");
        if let Some(days) = limits.max_days
            && !(1..=self.max_days).contains(&days)
        {
            let problem = format!("must be from 1 to GATEHOUSE_MAX_LEASE_DAYS ({}), not {days}", self.max_days);
            return Err(bad(&key("max_lease_days"), problem));
        }
        if let Some(min) = limits.min
            && min < self.min
        {
            let problem =
                format!("must be at least GATEHOUSE_MIN_LEASE_SECS ({}), not {}", self.min.as_secs(), min.as_secs());
            return Err(bad(&key("min_lease_secs"), problem));
        }
        if let Some(days) = limits.default_days {
            let max_days = limits.max_days.unwrap_or(self.max_days);
            let (limit, name) = match self.default_days {
                Some(global) if global < max_days => (global, "GATEHOUSE_DEFAULT_LEASE_DAYS"),
                _ if limits.max_days.is_some() => (max_days, "the cloud's max_lease_days"),
                _ => (max_days, "GATEHOUSE_MAX_LEASE_DAYS"),
            };
            if !(1..=limit).contains(&days) {
                let problem = format!("must be from 1 to {name} ({limit}), not {days}");
                return Err(bad(&key("default_lease_days"), problem));
            }
        }
        if limits != CloudLeaseLimits::default() {
            self.by_cloud.insert(cloud.to_string(), limits);
        }
        Ok(())
    }

    pub fn load<F: Fn(&str) -> Option<String>>(s: &Settings<F>) -> Result<LeaseSettings, ConfigError> {
        const MAX: &str = "GATEHOUSE_MAX_LEASE_DAYS";
        const DEFAULT: &str = "GATEHOUSE_DEFAULT_LEASE_DAYS";
        const REMINDERS: &str = "GATEHOUSE_LEASE_REMINDERS";
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
        Ok(LeaseSettings {
            default_days,
            max_days,
            min: s.seconds("GATEHOUSE_MIN_LEASE_SECS", 3600)?,
            reminders,
            max_extensions: s.number("GATEHOUSE_MAX_EXTENSIONS", 2, 0..=100)? as u32,
            by_cloud: BTreeMap::new(),
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
    fn a_cloud_may_narrow_each_limit_and_the_default_follows_its_longest() {
        let mut l = load(&[
            ("GATEHOUSE_MAX_LEASE_DAYS", "90"),
            ("GATEHOUSE_DEFAULT_LEASE_DAYS", "60"),
            ("GATEHOUSE_MIN_LEASE_SECS", "600"),
        ])
        .unwrap();
        l.narrow("pcd-east", CloudLeaseLimits { max_days: Some(30), ..Default::default() }).unwrap();
        let west = CloudLeaseLimits { min: Some(Duration::from_secs(7200)), default_days: Some(7), max_days: None };
        l.narrow("pcd-west", west).unwrap();
        l.narrow("pcd-north", CloudLeaseLimits::default()).unwrap();
        let east = l.for_cloud("pcd-east");
        assert_eq!((east.max_days, east.default_days, east.min.as_secs()), (30, Some(30), 600));
        let west = l.for_cloud("pcd-west");
        assert_eq!((west.max_days, west.default_days, west.min.as_secs()), (90, Some(7), 7200));
        let other = l.for_cloud("elsewhere");
        assert_eq!((other.max_days, other.default_days, other.min.as_secs()), (90, Some(60), 600));
        assert!(l.narrowed_on("pcd-east") && l.narrowed_on("pcd-west"));
        assert!(!l.narrowed_on("pcd-north"), "an empty gatehouse: key narrows nothing");
    }

    #[test]
    fn a_cloud_may_not_widen_a_limit() {
        let l = load(&[
            ("GATEHOUSE_MAX_LEASE_DAYS", "90"),
            ("GATEHOUSE_DEFAULT_LEASE_DAYS", "60"),
            ("GATEHOUSE_MIN_LEASE_SECS", "600"),
        ])
        .unwrap();
        let cases = [
            (CloudLeaseLimits { max_days: Some(91), ..Default::default() }, "max_lease_days", "(90), not 91"),
            (CloudLeaseLimits { max_days: Some(0), ..Default::default() }, "max_lease_days", "(90), not 0"),
            (CloudLeaseLimits { min: Some(Duration::from_secs(599)), ..Default::default() }, "min_lease_secs", "(600)"),
            (
                CloudLeaseLimits { default_days: Some(61), ..Default::default() },
                "default_lease_days",
                "GATEHOUSE_DEFAULT_LEASE_DAYS (60), not 61",
            ),
            (
                CloudLeaseLimits { max_days: Some(30), default_days: Some(31), ..Default::default() },
                "default_lease_days",
                "the cloud's max_lease_days (30), not 31",
            ),
        ];
        for (limits, key, problem) in cases {
            let err = l.clone().narrow("pcd-east", limits.clone()).unwrap_err();
            assert_eq!(err.setting, format!("clouds.yaml: cloud \"pcd-east\": gatehouse.{key}"), "{limits:?}");
            assert!(err.problem.contains(problem), "{err}");
        }
        let unbounded = load(&[("GATEHOUSE_MAX_LEASE_DAYS", "90")]).unwrap();
        let err = unbounded
            .clone()
            .narrow("c", CloudLeaseLimits { default_days: Some(91), ..Default::default() })
            .unwrap_err();
        assert!(err.problem.contains("GATEHOUSE_MAX_LEASE_DAYS (90)"), "{err}");
    }
}
