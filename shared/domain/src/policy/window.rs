//! Weekly windows: the days and wall-clock times when deploying is allowed.

use std::fmt;

use jiff::civil::{DateTime, Weekday};

/// A weekly window: on these days, from `start` to `end` wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first, no repeats.
    pub days: Vec<Weekday>,
    pub start: TimeOfDay,
    /// After `start`; may be 24:00.
    pub end: TimeOfDay,
}

/// A wall-clock time of day at minute resolution, `00:00` to `24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl Window {
    pub(super) fn on(&self, day: Weekday) -> bool {
        self.days.contains(&day)
    }

    /// Whether the wall-clock time `local` is inside the window.
    pub fn contains(&self, local: DateTime) -> bool {
        let minute = u16::try_from(local.hour()).unwrap_or(0) * 60 + u16::try_from(local.minute()).unwrap_or(0);
        self.on(local.weekday()) && self.start.0 <= minute && minute < self.end.0
    }
}

impl fmt::Display for Window {
    /// `mon–thu 19:00–23:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}–{}", describe_days(&self.days), self.start, self.end)
    }
}

/// `mon–thu`, `sat, sun`, `mon, wed, fri–sun`: runs of three or more days as ranges.
fn describe_days(days: &[Weekday]) -> String {
    let mut offsets: Vec<i8> = days.iter().map(|d| d.to_monday_zero_offset()).collect();
    offsets.sort_unstable();
    offsets.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < offsets.len() {
        let mut j = i;
        while j + 1 < offsets.len() && offsets[j + 1] == offsets[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}–{}", day_name(offsets[i]), day_name(offsets[j])));
        } else {
            parts.extend((i..=j).map(|k| day_name(offsets[k]).to_string()));
        }
        i = j + 1;
    }
    parts.join(", ")
}

pub(super) const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_name(monday_offset: i8) -> &'static str {
    DAY_NAMES[usize::try_from(monday_offset).unwrap_or(0) % 7]
}

impl TimeOfDay {
    /// Minutes since midnight, 0 to 1440.
    pub fn minutes(self) -> u16 {
        self.0
    }

    pub(super) fn hour_minute(self) -> (i8, i8) {
        ((self.0 / 60) as i8, (self.0 % 60) as i8)
    }

    pub(super) fn parse(s: &str) -> Result<TimeOfDay, String> {
        let bad = |why: &str| format!("invalid time \"{s}\": {why}");
        let (h, m) = s.split_once(':').ok_or_else(|| bad("expected HH:MM"))?;
        let digits =
            |p: &str, max_len: usize| !p.is_empty() && p.len() <= max_len && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(h, 2) || m.len() != 2 || !digits(m, 2) {
            return Err(bad("expected HH:MM"));
        }
        let (h, m): (u16, u16) =
            (h.parse().map_err(|_| bad("expected HH:MM"))?, m.parse().map_err(|_| bad("expected HH:MM"))?);
        if m > 59 {
            return Err(bad("minutes go from 00 to 59"));
        }
        if h > 24 || (h == 24 && m != 0) {
            return Err(bad("hours go from 00 to 23 (24:00 is the end of the day)"));
        }
        Ok(TimeOfDay(h * 60 + m))
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(TimeOfDay::parse("19:00").unwrap().minutes(), 1140);
        assert_eq!(TimeOfDay::parse("7:05").unwrap().to_string(), "07:05");
        assert_eq!(TimeOfDay::parse("24:00").unwrap().minutes(), 1440);
        for bad in ["25:00", "24:01", "19:60", "19", "19:0", "ab:cd", "-1:00", "19:00:00", ""] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_are_described_as_runs() {
        use Weekday::*;
        assert_eq!(describe_days(&[Monday, Tuesday, Wednesday, Thursday]), "mon–thu");
        assert_eq!(describe_days(&[Saturday, Sunday]), "sat, sun");
        assert_eq!(describe_days(&[Monday, Wednesday, Friday, Saturday, Sunday]), "mon, wed, fri–sun");
    }
}
