//! The cron grammar of GitLab-style deploy freezes: five fields, lists, ranges, steps, names and
//! `@daily`-style shortcuts, and the search for a schedule's occurrences.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::zone::{Pick, instant_of};

/// Cron occurrences are looked for this many years around a moment.
const CRON_SEARCH_YEARS: i16 = 9;

/// A five-field cron expression (minute hour day-of-month month day-of-week) as GitLab's deploy
/// freezes take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expression: String,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    /// Bit 0 is Sunday.
    days_of_week: u64,
    dom_restricted: bool,
    dow_restricted: bool,
}

struct CronField {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: CronField = CronField { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: CronField = CronField { name: "hour", min: 0, max: 23, names: &[] };
const DAY_OF_MONTH: CronField = CronField { name: "day of month", min: 1, max: 31, names: &[] };
const MONTH: CronField = CronField {
    name: "month",
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
const DAY_OF_WEEK: CronField =
    CronField { name: "day of week", min: 0, max: 7, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

impl CronField {
    fn value(&self, s: &str) -> Result<u32, String> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(self.min + i as u32);
        }
        let range = if self.names.is_empty() {
            format!("{}–{}", self.min, self.max)
        } else {
            format!("{}–{} or {}–{}", self.min, self.max, self.names[0], self.names[self.names.len() - 1])
        };
        match s.parse::<u32>() {
            Ok(v) if s.bytes().all(|b| b.is_ascii_digit()) && (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!("\"{s}\" is not a valid {} (expected {range})", self.name)),
        }
    }

    /// The bit set of one field, and whether the field is restricted (does not start with `*`).
    fn parse(&self, text: &str) -> Result<(u64, bool), String> {
        let mut mask = 0u64;
        for part in text.split(',') {
            if part.is_empty() {
                return Err(format!("the {} field \"{text}\" has an empty list item", self.name));
            }
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step = s
                        .parse::<u32>()
                        .ok()
                        .filter(|s| *s >= 1 && *s <= self.max)
                        .ok_or_else(|| format!("\"{s}\" is not a valid step of the {} field", self.name))?;
                    (r, Some(step))
                }
                None => (part, None),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a)?, self.value(b)?)
            } else {
                let v = self.value(range)?;
                (v, if step.is_some() { self.max } else { v })
            };
            if lo > hi {
                return Err(format!("the {} range \"{range}\" ends before it starts", self.name));
            }
            let mut v = lo;
            while v <= hi {
                mask |= 1 << v;
                v += step.unwrap_or(1);
            }
        }
        Ok((mask, !text.starts_with('*')))
    }
}

impl CronSchedule {
    pub fn parse(expression: &str) -> Result<CronSchedule, String> {
        let bad = |why: String| format!("invalid cron expression \"{expression}\": {why}");
        let trimmed = expression.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with('@') => return Err(bad(format!("unknown shortcut {trimmed}"))),
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(bad(format!(
                "it has {} fields; expected 5 (minute hour day-of-month month day-of-week)",
                fields.len()
            )));
        }
        let (minutes, _) = MINUTE.parse(fields[0]).map_err(bad)?;
        let (hours, _) = HOUR.parse(fields[1]).map_err(bad)?;
        let (days_of_month, dom_restricted) = DAY_OF_MONTH.parse(fields[2]).map_err(bad)?;
        let (months, _) = MONTH.parse(fields[3]).map_err(bad)?;
        let (mut days_of_week, dow_restricted) = DAY_OF_WEEK.parse(fields[4]).map_err(bad)?;
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        let schedule = CronSchedule {
            expression: fields.join(" "),
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            dom_restricted,
            dow_restricted,
        };
        if !schedule.can_match() {
            return Err(bad("no month has such a day, so it never matches".into()));
        }
        if trimmed.starts_with('@') {
            return Ok(CronSchedule { expression: trimmed.to_string(), ..schedule });
        }
        Ok(schedule)
    }

    /// The expression, with its fields separated by single spaces.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn can_match(&self) -> bool {
        if self.dom_restricted && self.dow_restricted {
            return true;
        }
        const LONGEST: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32).any(|m| {
            self.months & (1 << m) != 0 && (1..=LONGEST[m as usize]).any(|d| self.days_of_month & (1 << d) != 0)
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_restricted && self.dow_restricted { dom || dow } else { dom && dow }
    }

    /// Whether the schedule fires at the wall-clock minute of `dt`.
    pub fn matches(&self, dt: DateTime) -> bool {
        self.months & (1 << dt.month()) != 0
            && self.day_matches(dt.date())
            && self.hours & (1 << dt.hour()) != 0
            && self.minutes & (1 << dt.minute()) != 0
    }

    /// The first wall-clock minute at or after `from` at which the schedule fires (within nine
    /// years).
    pub fn next_at_or_after(&self, from: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let mut hour = from.hour() as u32;
        let mut minute = from.minute() as u32;
        if from.second() != 0 || from.subsec_nanosecond() != 0 {
            minute += 1;
        }
        let last_year = date.year().saturating_add(CRON_SEARCH_YEARS);
        loop {
            if minute > 59 {
                minute = 0;
                hour += 1;
            }
            if hour > 23 {
                date = date.tomorrow().ok()?;
                hour = 0;
                minute = 0;
            }
            if date.year() > last_year {
                return None;
            }
            if self.months & (1 << date.month()) == 0 {
                date = date.last_of_month().tomorrow().ok()?;
                (hour, minute) = (0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = date.tomorrow().ok()?;
                (hour, minute) = (0, 0);
                continue;
            }
            match next_bit(self.hours, hour, 23) {
                None => {
                    (hour, minute) = (24, 0);
                    continue;
                }
                Some(h) if h != hour => (hour, minute) = (h, 0),
                Some(_) => {}
            }
            match next_bit(self.minutes, minute, 59) {
                Some(m) => return Some(date.at(hour as i8, m as i8, 0, 0)),
                None => minute = 60,
            }
        }
    }

    /// The last wall-clock minute at or before `from` at which the schedule fires (within nine
    /// years).
    pub fn prev_at_or_before(&self, from: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let mut hour = from.hour() as i32;
        let mut minute = from.minute() as i32;
        let first_year = date.year().saturating_sub(CRON_SEARCH_YEARS);
        loop {
            if minute < 0 {
                minute = 59;
                hour -= 1;
            }
            if hour < 0 {
                date = date.yesterday().ok()?;
                (hour, minute) = (23, 59);
            }
            if date.year() < first_year {
                return None;
            }
            if self.months & (1 << date.month()) == 0 {
                date = date.first_of_month().yesterday().ok()?;
                (hour, minute) = (23, 59);
                continue;
            }
            if !self.day_matches(date) {
                date = date.yesterday().ok()?;
                (hour, minute) = (23, 59);
                continue;
            }
            match prev_bit(self.hours, hour as u32) {
                None => {
                    (hour, minute) = (-1, 59);
                    continue;
                }
                Some(h) if h as i32 != hour => (hour, minute) = (h as i32, 59),
                Some(_) => {}
            }
            match prev_bit(self.minutes, minute as u32) {
                Some(m) => return Some(date.at(hour as i8, m as i8, 0, 0)),
                None => minute = -1,
            }
        }
    }

    /// The latest firing at or before `t`, on the wall clock of `tz` (a repeated minute fires at
    /// its first pass).
    pub(super) fn prev_instant(&self, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
        // After the clock was set back, wall times later than the current one have already been
        // seen: start from the latest wall time of the last few hours.
        let local = tz.to_datetime(t);
        let before = tz.to_offset(t.checked_sub(SignedDuration::from_hours(3)).unwrap_or(t)).to_datetime(t);
        let mut from = local.max(before);
        for _ in 0..512 {
            let occurrence = self.prev_at_or_before(from)?;
            let at = instant_of(tz, occurrence, Pick::Earlier);
            if at <= t {
                return Some(at);
            }
            from = occurrence.checked_sub(SignedDuration::from_mins(1)).ok()?;
        }
        None
    }

    /// The first firing after `t`, on the wall clock of `tz` (a repeated minute fires at its
    /// second pass).
    pub(super) fn next_instant_after(&self, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
        let local = tz.to_datetime(t);
        let after = tz.to_offset(t.checked_add(SignedDuration::from_hours(3)).unwrap_or(t)).to_datetime(t);
        let mut from = local.min(after);
        for _ in 0..512 {
            let occurrence = self.next_at_or_after(from)?;
            let at = instant_of(tz, occurrence, Pick::Later);
            if at > t {
                return Some(at);
            }
            from = occurrence.checked_add(SignedDuration::from_mins(1)).ok()?;
        }
        None
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl FromStr for CronSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CronSchedule::parse(s)
    }
}

/// The lowest set bit of `mask` in `from..=max`.
fn next_bit(mask: u64, from: u32, max: u32) -> Option<u32> {
    if from > max {
        return None;
    }
    let shifted = mask >> from;
    if shifted == 0 {
        return None;
    }
    let bit = from + shifted.trailing_zeros();
    (bit <= max).then_some(bit)
}

/// The highest set bit of `mask` at or below `from`.
fn prev_bit(mask: u64, from: u32) -> Option<u32> {
    let below = if from >= 63 { mask } else { mask & ((1u64 << (from + 1)) - 1) };
    (below != 0).then(|| 63 - below.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        s.parse().unwrap()
    }

    fn cron(s: &str) -> CronSchedule {
        CronSchedule::parse(s).unwrap()
    }

    #[test]
    fn cron_fields_parse() {
        let c = cron("*/15 9-17 * * mon-fri");
        assert_eq!(c.minutes, (1 << 0) | (1 << 15) | (1 << 30) | (1 << 45));
        assert_eq!(c.hours, (9..=17).fold(0, |m, h| m | (1 << h)));
        assert_eq!(c.days_of_week, 0b0111110);
        assert!(!c.dom_restricted && c.dow_restricted);
        assert_eq!(cron("0 0 * * 7").days_of_week, 1);
        assert_eq!(cron("0 0 * * SUN,sat").days_of_week, 1 | (1 << 6));
        assert_eq!(cron("0 0 1 jan,Jul *").months, (1 << 1) | (1 << 7));
        assert_eq!(cron("5/20 * * * *").minutes, (1 << 5) | (1 << 25) | (1 << 45));
        assert_eq!(cron("@daily").expression(), "@daily");
        assert_eq!(cron("@weekly").days_of_week, 1);
        assert_eq!(cron("  0   18 * *  5 ").to_string(), "0 18 * * 5");
    }

    #[test]
    fn bad_cron_expressions_are_refused() {
        for (expr, needle) in [
            ("0 18 * *", "4 fields"),
            ("60 * * * *", "\"60\" is not a valid minute"),
            ("0 24 * * *", "\"24\" is not a valid hour"),
            ("0 0 0 * *", "day of month"),
            ("0 0 * 13 *", "month"),
            ("0 0 * * 8", "day of week"),
            ("0 0 * * fri-mon", "ends before it starts"),
            ("*/0 * * * *", "step"),
            ("0 0 30 2 *", "never matches"),
            ("1,,2 * * * *", "empty list item"),
            ("@sometimes", "unknown shortcut"),
            ("a b c d e", "not a valid minute"),
        ] {
            let err = CronSchedule::parse(expr).unwrap_err();
            assert!(err.contains(needle), "{expr}: {err}");
        }
        assert!(CronSchedule::parse("0 0 29 2 *").is_ok());
    }

    #[test]
    fn cron_next_and_prev() {
        let c = cron("0 18 * * 5");
        // 2026-03-04 is a Wednesday.
        assert_eq!(c.next_at_or_after(dt("2026-03-04T12:00")), Some(dt("2026-03-06T18:00")));
        assert_eq!(c.next_at_or_after(dt("2026-03-06T18:00")), Some(dt("2026-03-06T18:00")));
        assert_eq!(c.next_at_or_after(dt("2026-03-06T18:00:01")), Some(dt("2026-03-13T18:00")));
        assert_eq!(c.prev_at_or_before(dt("2026-03-06T17:59")), Some(dt("2026-02-27T18:00")));
        assert_eq!(c.prev_at_or_before(dt("2026-03-06T18:00:30")), Some(dt("2026-03-06T18:00")));
        let c = cron("30 2 29 2 *");
        assert_eq!(c.next_at_or_after(dt("2026-03-01T00:00")), Some(dt("2028-02-29T02:30")));
        assert_eq!(c.prev_at_or_before(dt("2026-03-01T00:00")), Some(dt("2024-02-29T02:30")));
        let c = cron("*/20 23 31 12 *");
        assert_eq!(c.next_at_or_after(dt("2026-12-31T23:41")), Some(dt("2027-12-31T23:00")));
        assert_eq!(c.prev_at_or_before(dt("2027-01-01T00:00")), Some(dt("2026-12-31T23:40")));
        // Both day fields restricted: either matches (the 13th, or any Friday).
        let c = cron("0 0 13 * fri");
        assert_eq!(c.next_at_or_after(dt("2026-03-07T00:00")), Some(dt("2026-03-13T00:00")));
        assert_eq!(c.next_at_or_after(dt("2026-03-14T00:00")), Some(dt("2026-03-20T00:00")));
        assert_eq!(c.next_at_or_after(dt("2026-04-11T00:00")), Some(dt("2026-04-13T00:00")));
        // A step on the day of month counts as unrestricted: both must match.
        let c = cron("0 0 */2 * mon");
        assert!(c.matches(dt("2026-03-09T00:00")) == (9 % 2 == 1));
    }

    #[test]
    fn cron_search_agrees_with_brute_force() {
        for expr in ["7 */5 * * *", "0 0 1,15 * *", "15 3 * * 1-3", "0 12 13 * 5", "*/7 1 * 2 *"] {
            let c = cron(expr);
            let mut t = dt("2026-01-30T22:00");
            for _ in 0..5 {
                let next = c.next_at_or_after(t).unwrap();
                let mut probe = t;
                while probe < next {
                    assert!(!c.matches(probe), "{expr}: {probe} skipped");
                    probe = probe.checked_add(SignedDuration::from_mins(1)).unwrap();
                }
                assert!(c.matches(next));
                assert_eq!(c.prev_at_or_before(next), Some(next));
                let before = next.checked_sub(SignedDuration::from_mins(1)).unwrap();
                let prev = c.prev_at_or_before(before).unwrap();
                assert!(prev < next && (prev >= t || c.next_at_or_after(t) == Some(next)));
                t = next.checked_add(SignedDuration::from_mins(1)).unwrap();
            }
        }
    }
}
