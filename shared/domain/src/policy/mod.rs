//! The change policy: when a CI deployment to an environment may run.
//!
//! The policy is a YAML file with one entry per environment (see "CI change gate" in DESIGN.md):
//!
//! ```yaml
//! environments:
//!   production:
//!     timezone: Europe/Berlin
//!     windows:                  # if present, deploys only inside one of these
//!       - {days: [mon, tue, wed, thu], start: "19:00", end: "23:00"}
//!       - {days: [sat, sun], start: "00:00", end: "24:00"}
//!     blackouts:                # never inside these
//!       - {from: "2026-12-20T00:00", to: "2027-01-04T00:00", reason: "Year-end freeze"}
//!     freezes:                  # recurring, as GitLab deploy freezes
//!       - {freeze_start: "0 18 * * 5", freeze_end: "0 8 * * 1", cron_timezone: "UTC"}
//!     respect_planned_window: true   # only between the change's planned start and end
//! ```
//!
//! Rules, all of which must allow a deployment:
//!
//! - **windows**: wall-clock times in the environment's `timezone` (default UTC) on the listed days
//!   (default: every day). A moment is inside a window when the local wall clock then reads a time
//!   in `[start, end)` on one of the days; `end` may be `"24:00"` (end of the day), a window never
//!   spans midnight (split it in two). On a spring-forward day a window over the skipped hour is
//!   shorter (it opens when the clock jumps into it), on a fall-back day it is longer (the repeated
//!   hour is inside it twice).
//! - **blackouts**: `[from, to)` in local time of the environment. A `from` in a skipped hour starts
//!   at the jump, in a repeated hour at its first pass; a `to` in a repeated hour ends at its second
//!   pass (the longer reading wins).
//! - **freezes**: as GitLab's deploy freezes, a freeze is active from the most recent `freeze_start`
//!   cron occurrence until the first `freeze_end` occurrence after it. Cron expressions have five
//!   fields (minute hour day-of-month month day-of-week; `*`, lists, ranges, steps, month and day
//!   names, 7 = Sunday, `@daily`-style shortcuts), in `cron_timezone` (default UTC, as in GitLab).
//!   When both day fields are restricted (neither starts with `*`), either may match, as in cron.
//! - **respect_planned_window**: only between the change's planned start and end (when the change
//!   has them).
//!
//! [`ChangePolicy::evaluate`] says whether deploying is allowed now, which rule decided, and the
//! first moment from now on when every rule allows it (searched up to [`SEARCH_HORIZON_DAYS`]).

// One concern per file; the public types are re-exported here, so paths stay `policy::…`.
mod cron;
mod error;
mod evaluate;
mod periods;
mod verdict;
mod window;
mod yaml;
mod zone;

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::Timestamp;

pub use cron::CronSchedule;
pub use error::PolicyError;
pub use periods::{Blackout, Freeze};
pub use verdict::WindowVerdict;
pub use window::{TimeOfDay, Window};
pub use zone::Zone;

/// How far ahead [`ChangePolicy::evaluate`] looks for the next opening before it gives up.
pub const SEARCH_HORIZON_DAYS: i64 = 400;

/// A parsed change policy: the rules of each environment, and of the others (`default:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePolicy {
    environments: BTreeMap<String, EnvironmentPolicy>,
    /// The rules of environments the policy does not name; `None`: they are blocked.
    default: Option<EnvironmentPolicy>,
}

/// Without a policy file every environment is open (the change's approval still gates).
impl Default for ChangePolicy {
    fn default() -> Self {
        ChangePolicy { environments: BTreeMap::new(), default: Some(EnvironmentPolicy::default()) }
    }
}

/// The rules of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentPolicy {
    /// The zone of the windows and blackouts.
    pub timezone: Zone,
    /// Empty: deploys at any time (other rules permitting).
    pub windows: Vec<Window>,
    pub blackouts: Vec<Blackout>,
    pub freezes: Vec<Freeze>,
    pub respect_planned_window: bool,
    /// Only ID tokens of protected refs (`ref_protected: "true"`) may deploy here (default true).
    pub protected: bool,
    /// The GitLab projects (paths) that may deploy here; `None`: any.
    pub projects: Option<Vec<String>>,
    /// What every change to this environment carries in ServiceNow.
    pub details: crate::changes::ChangeDetails,
}

impl Default for EnvironmentPolicy {
    fn default() -> Self {
        EnvironmentPolicy {
            timezone: Zone::utc(),
            windows: Vec::new(),
            blackouts: Vec::new(),
            freezes: Vec::new(),
            respect_planned_window: false,
            protected: true,
            projects: None,
            details: Default::default(),
        }
    }
}

impl FromStr for ChangePolicy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangePolicy::parse(s)
    }
}

impl ChangePolicy {
    /// Reads a policy file. Every problem is reported with its line and column: unknown keys, bad
    /// day names, times like `"25:00"`, windows ending before they start, unknown time zones, bad
    /// cron expressions, blackouts ending before they start, ...
    pub fn parse(yaml: &str) -> Result<ChangePolicy, PolicyError> {
        if yaml.trim().is_empty() {
            return Err(PolicyError { line: None, column: None, message: "the policy is empty".into() });
        }
        let raw: yaml::RawPolicy = serde_yaml::from_str(yaml)?;
        Ok(ChangePolicy { environments: raw.environments.0, default: raw.default })
    }

    /// The rules for `name`: its own, else the `default:` ones; `None` when it is blocked.
    pub fn environment(&self, name: &str) -> Option<&EnvironmentPolicy> {
        self.environments.get(name).or(self.default.as_ref())
    }

    pub fn environments(&self) -> impl Iterator<Item = (&str, &EnvironmentPolicy)> {
        self.environments.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether a deployment to `environment` may run at `now`, for a change planned for
    /// `planned` (start, end) if it has such a plan. An environment the policy does not name is
    /// always open.
    pub fn evaluate(
        &self,
        environment: &str,
        now: Timestamp,
        planned: Option<(Timestamp, Timestamp)>,
    ) -> WindowVerdict {
        match self.environment(environment) {
            Some(policy) => policy.evaluate(environment, now, planned),
            None => WindowVerdict {
                open: false,
                next_open_at: None,
                rule: format!("environment {environment} is not in the change policy, which has no default: entry"),
                unnamed: true,
            },
        }
    }
}
