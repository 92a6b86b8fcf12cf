//! Blackouts and freezes: the periods when nothing is deployed.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::cron::CronSchedule;
use super::zone::{Pick, Zone, instant_of};

/// A period when nothing is deployed, in local time of the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blackout {
    pub from: DateTime,
    /// After `from`.
    pub to: DateTime,
    pub reason: Option<String>,
}

/// A recurring freeze, as GitLab's deploy freezes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub freeze_start: CronSchedule,
    pub freeze_end: CronSchedule,
    pub cron_timezone: Zone,
}

impl Blackout {
    /// The blackout as moments: a `from` in a skipped hour starts at the jump, in a repeated hour at
    /// its first pass; a `to` in a repeated hour ends at its second pass.
    pub(super) fn instants(&self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        (instant_of(tz, self.from, Pick::Earlier), instant_of(tz, self.to, Pick::Later))
    }
}

impl Freeze {
    /// `None` when the freeze is not active at `t`; otherwise until when it is (`Some(None)`: its
    /// end does not come within reach).
    pub(super) fn active_until(&self, t: Timestamp) -> Option<Option<Timestamp>> {
        let tz = self.cron_timezone.time_zone();
        let start = self.freeze_start.prev_instant(tz, t)?;
        match self.freeze_end.next_instant_after(tz, start) {
            Some(end) if end <= t => None,
            Some(end) => Some(Some(end)),
            None => Some(None),
        }
    }
}

pub(super) fn minutes(dt: DateTime) -> String {
    dt.strftime("%Y-%m-%d %H:%M").to_string()
}
