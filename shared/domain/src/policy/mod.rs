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
//!     change_type: standard     # normal (default) | standard | emergency
//!     standard_template: "Deploy shop (pre-approved)"   # standard only: name or sys_id
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
//! `change_type` says which of ServiceNow's change models the environment's changes follow:
//! `normal` (assessed, then authorized by the CAB), `standard` (created from the pre-approved
//! `standard_template`, no CAB: it proceeds when its window is open) or `emergency` (emergency
//! changes only: every request must carry the job's emergency reason). A job's emergency reason
//! makes an emergency change on a normal or standard environment too.
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
pub(crate) mod yaml;
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
    /// Which of ServiceNow's change models its changes follow (default normal).
    pub change_type: ChangeType,
}

/// `change_type` (and `standard_template`): which of ServiceNow's change models the changes of an
/// environment follow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ChangeType {
    /// Assessed, then authorized by the CAB. A job's emergency reason still makes an emergency
    /// change.
    #[default]
    Normal,
    /// Created from this pre-approved standard change template (its name or sys_id): no CAB
    /// approval, it proceeds when its window is open. A job's emergency reason still makes an
    /// emergency change.
    Standard { template: String },
    /// Emergency changes only: a request must carry the job's `GATEHOUSE_EMERGENCY_REASON`.
    Emergency,
}

impl ChangeType {
    pub fn name(&self) -> &'static str {
        match self {
            ChangeType::Normal => "normal",
            ChangeType::Standard { .. } => "standard",
            ChangeType::Emergency => "emergency",
        }
    }
}

impl EnvironmentPolicy {
    /// An emergency-only environment (`change_type: emergency`) refuses a request without the
    /// job's emergency reason (422 naming `emergency_reason`).
    pub fn check_emergency_reason(&self, environment: &str, emergency_reason: Option<&str>) -> crate::Result<()> {
        if self.change_type == ChangeType::Emergency && emergency_reason.is_none() {
            return Err(crate::Error::invalid(
                "emergency_reason",
                format!(
                    "is required: environment {environment} takes emergency changes only; set \
                     GATEHOUSE_EMERGENCY_REASON in the job to say why"
                ),
            ));
        }
        Ok(())
    }
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
            change_type: ChangeType::Normal,
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
            return Err(PolicyError::unplaced(PolicyError::CHANGE_POLICY, "the policy is empty"));
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
