//! Time zones, and the moments at which a wall clock reads a given time (daylight-saving gaps and
//! folds).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// A named IANA time zone (`Europe/Berlin`).
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// Looks the zone up in the time zone database.
    pub fn get(name: &str) -> Result<Zone, String> {
        let tz = TimeZone::get(name).map_err(|_| format!("unknown time zone \"{name}\""))?;
        let name = tz.iana_name().unwrap_or(name).to_string();
        Ok(Zone { name, tz })
    }

    pub fn utc() -> Zone {
        Zone { name: "UTC".into(), tz: TimeZone::UTC }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

/// Which pass of a repeated wall-clock time to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pick {
    Earlier,
    Later,
}

/// The moment the wall clock of `tz` reads `dt`: in a repeated hour the pass `pick` says; a time
/// the clock skips is reached when it jumps over it.
pub(super) fn instant_of(tz: &TimeZone, dt: DateTime, pick: Pick) -> Timestamp {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    let result = match ambiguous.offset() {
        AmbiguousOffset::Gap { before, after } => {
            let (a, b) = (before.to_timestamp(dt), after.to_timestamp(dt));
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    let (lo, hi) = (a.min(b), a.max(b));
                    match tz.following(lo).next().map(|tr| tr.timestamp()) {
                        Some(jump) if jump <= hi => Ok(jump),
                        _ => ambiguous.compatible(),
                    }
                }
                _ => ambiguous.compatible(),
            }
        }
        _ => match pick {
            Pick::Earlier => ambiguous.earlier(),
            Pick::Later => ambiguous.later(),
        },
    };
    result.unwrap_or(if dt.year() < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// Every moment the wall clock of `tz` reads exactly `dt` (none when it skips it).
pub(super) fn instants_of(tz: &TimeZone, dt: DateTime, out: &mut Vec<Timestamp>) {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => out.extend(offset.to_timestamp(dt).ok()),
        AmbiguousOffset::Fold { before, after } => {
            out.extend(before.to_timestamp(dt).ok());
            out.extend(after.to_timestamp(dt).ok());
        }
        AmbiguousOffset::Gap { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        s.parse().unwrap()
    }

    #[test]
    fn skipped_wall_times_are_reached_at_the_jump() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let jump: Timestamp = "2026-03-29T01:00:00Z".parse().unwrap();
        assert_eq!(instant_of(&tz, dt("2026-03-29T02:30"), Pick::Earlier), jump);
        assert_eq!(instant_of(&tz, dt("2026-03-29T02:00"), Pick::Later), jump);
        let first: Timestamp = "2026-10-25T00:30:00Z".parse().unwrap();
        let second: Timestamp = "2026-10-25T01:30:00Z".parse().unwrap();
        assert_eq!(instant_of(&tz, dt("2026-10-25T02:30"), Pick::Earlier), first);
        assert_eq!(instant_of(&tz, dt("2026-10-25T02:30"), Pick::Later), second);
    }
}
