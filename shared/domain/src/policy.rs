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

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// How far ahead [`ChangePolicy::evaluate`] looks for the next opening before it gives up.
pub const SEARCH_HORIZON_DAYS: i64 = 400;

/// How far ahead the next opening of the weekly windows is looked for.
const WINDOW_SEARCH_DAYS: i64 = 15;
/// Cron occurrences are looked for this many years around a moment.
const CRON_SEARCH_YEARS: i16 = 9;
/// A bound on the forward search's steps (each step jumps to a rule's boundary).
const MAX_STEPS: usize = 100_000;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A change policy that could not be read: where (1-based line and column of the offending key or
/// value, when known) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "change policy, line {line}, column {column}: {}", self.message),
            (Some(line), None) => write!(f, "change policy, line {line}: {}", self.message),
            _ => write!(f, "change policy: {}", self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

impl From<serde_yaml::Error> for PolicyError {
    fn from(err: serde_yaml::Error) -> Self {
        let text = err.to_string();
        match err.location() {
            Some(loc) => {
                let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
                PolicyError { line: Some(loc.line()), column: Some(loc.column()), message }
            }
            None => PolicyError { line: None, column: None, message: text },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The policy
// ---------------------------------------------------------------------------------------------

/// A parsed change policy: the rules of each environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangePolicy {
    environments: BTreeMap<String, EnvironmentPolicy>,
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
}

impl Default for EnvironmentPolicy {
    fn default() -> Self {
        EnvironmentPolicy {
            timezone: Zone::utc(),
            windows: Vec::new(),
            blackouts: Vec::new(),
            freezes: Vec::new(),
            respect_planned_window: false,
        }
    }
}

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

/// Whether deploying is allowed at the moment asked about, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowVerdict {
    pub open: bool,
    /// The first moment from the one asked about (included) at which every rule allows deploying,
    /// in the environment's zone; serialised as RFC 3339 with the offset
    /// (`2026-12-01T19:00:00+01:00`). `None` when none comes within [`SEARCH_HORIZON_DAYS`] (or the
    /// change's planned window is over). When `open`, the moment asked about.
    #[serde(default, with = "rfc3339_with_offset")]
    pub next_open_at: Option<Zoned>,
    /// The rule that decided, as a sentence: the one that keeps it closed longest, or, when open,
    /// the window it is open in.
    pub rule: String,
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
        let raw: RawPolicy = serde_yaml::from_str(yaml)?;
        Ok(ChangePolicy { environments: raw.environments.0 })
    }

    pub fn environment(&self, name: &str) -> Option<&EnvironmentPolicy> {
        self.environments.get(name)
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
        match self.environments.get(environment) {
            Some(policy) => policy.evaluate(environment, now, planned),
            None => WindowVerdict {
                open: true,
                next_open_at: Some(now.to_zoned(TimeZone::UTC)),
                rule: format!("no policy for environment {environment}"),
            },
        }
    }
}

/// A rule of an environment, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Window(usize),
    /// Outside every window, and none opens soon.
    Windows,
    Blackout(usize),
    Freeze(usize),
    Planned,
}

/// A rule that forbids deploying at some moment, and until when (`None`: not within reach).
#[derive(Debug, Clone, Copy)]
struct Block {
    rule: Rule,
    until: Option<Timestamp>,
}

impl EnvironmentPolicy {
    /// See [`ChangePolicy::evaluate`]; `environment` only names it in sentences.
    pub fn evaluate(
        &self,
        environment: &str,
        now: Timestamp,
        planned: Option<(Timestamp, Timestamp)>,
    ) -> WindowVerdict {
        let tz = &self.timezone.tz;
        let blackouts: Vec<(Timestamp, Timestamp)> = self.blackouts.iter().map(|b| b.instants(tz)).collect();
        let blocks = self.blocks(now, planned, &blackouts);
        if blocks.is_empty() {
            return WindowVerdict {
                open: true,
                next_open_at: Some(now.to_zoned(tz.clone())),
                rule: self.open_rule(environment, now, planned),
            };
        }
        // The rule that keeps it closed longest decides (the first one named, among equals).
        let mut decisive = blocks[0];
        for b in &blocks[1..] {
            if later(b.until, decisive.until) {
                decisive = *b;
            }
        }
        let rule = self.describe(decisive.rule);

        // Every moment before the latest `until` of the rules closed at `t` is closed too, so jump
        // there and look again, until no rule objects.
        let horizon = now.checked_add(SignedDuration::from_hours(24 * SEARCH_HORIZON_DAYS)).unwrap_or(Timestamp::MAX);
        let mut blocks = blocks;
        let mut next_open = None;
        for _ in 0..MAX_STEPS {
            let mut until = Some(Timestamp::MIN);
            for b in &blocks {
                until = match (until, b.until) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            let Some(t) = until else { break };
            if t > horizon {
                break;
            }
            blocks = self.blocks(t, planned, &blackouts);
            if blocks.is_empty() {
                next_open = Some(t);
                break;
            }
        }
        WindowVerdict { open: false, next_open_at: next_open.map(|t| t.to_zoned(tz.clone())), rule }
    }

    /// The rules that forbid deploying at `t`.
    fn blocks(
        &self,
        t: Timestamp,
        planned: Option<(Timestamp, Timestamp)>,
        blackouts: &[(Timestamp, Timestamp)],
    ) -> Vec<Block> {
        let mut out = Vec::new();
        for (i, (from, to)) in blackouts.iter().enumerate() {
            if *from <= t && t < *to {
                out.push(Block { rule: Rule::Blackout(i), until: Some(*to) });
            }
        }
        for (i, freeze) in self.freezes.iter().enumerate() {
            if let Some(until) = freeze.active_until(t) {
                out.push(Block { rule: Rule::Freeze(i), until });
            }
        }
        if !self.windows.is_empty() && self.window_at(t).is_none() {
            out.push(match self.next_window_opening(t) {
                Some((i, at)) => Block { rule: Rule::Window(i), until: Some(at) },
                None => Block { rule: Rule::Windows, until: None },
            });
        }
        if self.respect_planned_window
            && let Some((start, end)) = planned
        {
            if end <= start || t >= end {
                out.push(Block { rule: Rule::Planned, until: None });
            } else if t < start {
                out.push(Block { rule: Rule::Planned, until: Some(start) });
            }
        }
        out
    }

    /// The window the wall clock is in at `t`.
    fn window_at(&self, t: Timestamp) -> Option<usize> {
        let local = self.timezone.tz.to_datetime(t);
        self.windows.iter().position(|w| w.contains(local))
    }

    /// The first moment after `t` inside a window, and that window. The wall clock enters a
    /// window either when it reads the window's start (once, or twice in a repeated hour) or when
    /// it jumps (a time zone transition), so those moments are the only candidates.
    fn next_window_opening(&self, t: Timestamp) -> Option<(usize, Timestamp)> {
        let tz = &self.timezone.tz;
        let end = t.checked_add(SignedDuration::from_hours(24 * WINDOW_SEARCH_DAYS)).unwrap_or(Timestamp::MAX);
        let today = tz.to_datetime(t).date();
        let mut day = today.yesterday().unwrap_or(today);
        let mut candidates = Vec::new();
        for _ in 0..WINDOW_SEARCH_DAYS + 2 {
            for w in &self.windows {
                if w.on(day.weekday()) {
                    let (h, m) = w.start.hour_minute();
                    instants_of(tz, day.at(h, m, 0, 0), &mut candidates);
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        candidates.extend(tz.following(t).map(|tr| tr.timestamp()).take_while(|ts| *ts <= end));
        candidates.retain(|c| *c > t && *c <= end);
        candidates.sort();
        candidates.into_iter().find_map(|c| self.window_at(c).map(|i| (i, c)))
    }

    fn open_rule(&self, environment: &str, now: Timestamp, planned: Option<(Timestamp, Timestamp)>) -> String {
        if let Some(i) = self.window_at(now) {
            self.describe(Rule::Window(i))
        } else if self.respect_planned_window && planned.is_some() {
            self.describe(Rule::Planned)
        } else {
            format!("no window, blackout or freeze closes environment {environment} now")
        }
    }

    fn describe(&self, rule: Rule) -> String {
        let zone = self.timezone.name();
        match rule {
            Rule::Window(i) => format!("weekly window {} {zone}", self.windows[i]),
            Rule::Windows => {
                let all = self.windows.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(" and ");
                format!("weekly windows {all} {zone} (none opens within {WINDOW_SEARCH_DAYS} days)")
            }
            Rule::Blackout(i) => {
                let b = &self.blackouts[i];
                let mut s = format!("blackout {} – {} {zone}", minutes(b.from), minutes(b.to));
                if let Some(reason) = b.reason.as_deref().filter(|r| !r.trim().is_empty()) {
                    s.push_str(": ");
                    s.push_str(reason.trim());
                }
                s
            }
            Rule::Freeze(i) => {
                let f = &self.freezes[i];
                format!("deploy freeze {} → {} ({})", f.freeze_start, f.freeze_end, f.cron_timezone.name())
            }
            Rule::Planned => "planned window of the change".to_string(),
        }
    }
}

/// `a` later than `b`, where `None` is later than any moment.
fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}

fn minutes(dt: DateTime) -> String {
    dt.strftime("%Y-%m-%d %H:%M").to_string()
}

impl Window {
    fn on(&self, day: Weekday) -> bool {
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

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_name(monday_offset: i8) -> &'static str {
    DAY_NAMES[usize::try_from(monday_offset).unwrap_or(0) % 7]
}

impl TimeOfDay {
    /// Minutes since midnight, 0 to 1440.
    pub fn minutes(self) -> u16 {
        self.0
    }

    fn hour_minute(self) -> (i8, i8) {
        ((self.0 / 60) as i8, (self.0 % 60) as i8)
    }

    fn parse(s: &str) -> Result<TimeOfDay, String> {
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

impl Blackout {
    /// The blackout as moments: a `from` in a skipped hour starts at the jump, in a repeated hour at
    /// its first pass; a `to` in a repeated hour ends at its second pass.
    fn instants(&self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        (instant_of(tz, self.from, Pick::Earlier), instant_of(tz, self.to, Pick::Later))
    }
}

impl Freeze {
    /// `None` when the freeze is not active at `t`; otherwise until when it is (`Some(None)`: its
    /// end does not come within reach).
    fn active_until(&self, t: Timestamp) -> Option<Option<Timestamp>> {
        let tz = &self.cron_timezone.tz;
        let start = self.freeze_start.prev_instant(tz, t)?;
        match self.freeze_end.next_instant_after(tz, start) {
            Some(end) if end <= t => None,
            Some(end) => Some(Some(end)),
            None => Some(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wall clock to moments
// ---------------------------------------------------------------------------------------------

/// Which pass of a repeated wall-clock time to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Earlier,
    Later,
}

/// The moment the wall clock of `tz` reads `dt`: in a repeated hour the pass `pick` says; a time
/// the clock skips is reached when it jumps over it.
fn instant_of(tz: &TimeZone, dt: DateTime, pick: Pick) -> Timestamp {
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
fn instants_of(tz: &TimeZone, dt: DateTime, out: &mut Vec<Timestamp>) {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => out.extend(offset.to_timestamp(dt).ok()),
        AmbiguousOffset::Fold { before, after } => {
            out.extend(before.to_timestamp(dt).ok());
            out.extend(after.to_timestamp(dt).ok());
        }
        AmbiguousOffset::Gap { .. } => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Cron
// ---------------------------------------------------------------------------------------------

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
    fn prev_instant(&self, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
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
    fn next_instant_after(&self, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
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

// ---------------------------------------------------------------------------------------------
// Reading the YAML
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyFields {
    environments: Environments,
}

struct RawPolicy {
    environments: Environments,
}

impl<'de> Deserialize<'de> for RawPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "a mapping with the key `environments`", |raw: RawPolicyFields| {
            Ok(RawPolicy { environments: raw.environments })
        })
    }
}

struct Environments(BTreeMap<String, EnvironmentPolicy>);

/// An environment's name, refused (at the name) when it was seen before.
struct NewName<'a>(&'a BTreeMap<String, EnvironmentPolicy>);

impl<'de> de::DeserializeSeed<'de> for NewName<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        struct V<'a>(&'a BTreeMap<String, EnvironmentPolicy>);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an environment name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                if self.0.contains_key(v) {
                    return Err(E::custom(format!("environment \"{v}\" is defined twice")));
                }
                Ok(v.to_string())
            }
        }
        d.deserialize_str(V(self.0))
    }
}

impl<'de> Deserialize<'de> for Environments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Environments;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of environment names to their rules")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environments, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(name) = map.next_key_seed(NewName(&out))? {
                    let policy = map.next_value::<Option<EnvironmentPolicy>>()?.unwrap_or_default();
                    out.insert(name, policy);
                }
                Ok(Environments(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a mapping as `R`, then checks it with `check`; an error is reported at the mapping.
fn checked_map<'de, D, R, T>(d: D, expecting: &'static str, check: fn(R) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
{
    struct V<R, T> {
        expecting: &'static str,
        check: fn(R) -> Result<T, String>,
    }
    impl<'de, R: Deserialize<'de>, T> Visitor<'de> for V<R, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = R::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.check)(raw).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V { expecting, check })
}

/// Reads a string and converts it with `parse`; an error is reported at the string.
fn parsed_str<'de, D, T>(d: D, expecting: &'static str, parse: fn(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<'de, T> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { expecting, parse })
}

/// Reads a non-empty sequence; an empty one is reported at the sequence with `empty`.
fn non_empty_seq<'de, D, T>(d: D, expecting: &'static str, empty: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T> {
        expecting: &'static str,
        empty: &'static str,
        item: PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            if out.is_empty() {
                return Err(de::Error::custom(self.empty));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V { expecting, empty, item: PhantomData })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    #[serde(default)]
    timezone: Option<Zone>,
    #[serde(default)]
    windows: Option<Windows>,
    #[serde(default)]
    blackouts: Option<Vec<Blackout>>,
    #[serde(default)]
    freezes: Option<Vec<Freeze>>,
    #[serde(default)]
    respect_planned_window: Option<bool>,
}

impl<'de> Deserialize<'de> for EnvironmentPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(
            d,
            "an environment's rules (timezone, windows, blackouts, freezes, respect_planned_window)",
            |raw: RawEnvironment| {
                Ok(EnvironmentPolicy {
                    timezone: raw.timezone.unwrap_or_else(Zone::utc),
                    windows: raw.windows.map(|w| w.0).unwrap_or_default(),
                    blackouts: raw.blackouts.unwrap_or_default(),
                    freezes: raw.freezes.unwrap_or_default(),
                    respect_planned_window: raw.respect_planned_window.unwrap_or(false),
                })
            },
        )
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "an IANA time zone name like \"Europe/Berlin\"", Zone::get)
    }
}

struct Windows(Vec<Window>);

impl<'de> Deserialize<'de> for Windows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        non_empty_seq(d, "a list of windows", "windows is empty: leave it out to allow deploys at any time")
            .map(Windows)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(default)]
    days: Option<Days>,
    start: TimeOfDay,
    end: TimeOfDay,
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "a window {days, start, end}", |raw: RawWindow| {
            if raw.start.0 >= 24 * 60 {
                return Err("a window cannot start at 24:00".to_string());
            }
            if raw.end <= raw.start {
                return Err(format!(
                    "the window ends at {} before it starts at {}; a window cannot span midnight: \
                     split it in two, the first ending at \"24:00\"",
                    raw.end, raw.start
                ));
            }
            let mut days = raw.days.map(|d| d.0).unwrap_or_else(|| {
                vec![
                    Weekday::Monday,
                    Weekday::Tuesday,
                    Weekday::Wednesday,
                    Weekday::Thursday,
                    Weekday::Friday,
                    Weekday::Saturday,
                    Weekday::Sunday,
                ]
            });
            days.sort_by_key(|d| d.to_monday_zero_offset());
            days.dedup();
            Ok(Window { days, start: raw.start, end: raw.end })
        })
    }
}

struct Days(Vec<Weekday>);

struct DayName(Weekday);

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        non_empty_seq::<D, DayName>(d, "a list of days like [mon, tue]", "days is empty: name at least one day")
            .map(|days| Days(days.into_iter().map(|d| d.0).collect()))
    }
}

impl<'de> Deserialize<'de> for DayName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a day name like \"mon\"", |s| {
            let lower = s.trim().to_ascii_lowercase();
            const FULL: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
            let index = DAY_NAMES.iter().position(|n| *n == lower).or_else(|| FULL.iter().position(|n| *n == lower));
            match index {
                Some(i) => Ok(DayName(Weekday::from_monday_zero_offset(i as i8).unwrap_or(Weekday::Monday))),
                None => Err(format!("unknown day \"{s}\" (expected one of mon, tue, wed, thu, fri, sat, sun)")),
            }
        })
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a time of day like \"19:00\"", TimeOfDay::parse)
    }
}

/// A local date and time without offset: `2026-12-20T00:00` (or `2026-12-20 00:00`, `2026-12-20`).
struct LocalDateTime(DateTime);

impl<'de> Deserialize<'de> for LocalDateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a local date and time like \"2026-12-20T00:00\"", |s| {
            let bad = || format!("invalid date and time \"{s}\" (expected a local time like \"2026-12-20T00:00\")");
            let pieces = jiff::fmt::temporal::Pieces::parse(s.trim()).map_err(|_| bad())?;
            if pieces.offset().is_some() || pieces.time_zone_annotation().is_some() {
                return Err(format!(
                    "\"{s}\" carries an offset or zone; blackout times are local times in the environment's timezone"
                ));
            }
            s.trim().parse::<DateTime>().map(LocalDateTime).map_err(|_| bad())
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlackout {
    from: LocalDateTime,
    to: LocalDateTime,
    #[serde(default)]
    reason: Option<String>,
}

impl<'de> Deserialize<'de> for Blackout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "a blackout {from, to, reason}", |raw: RawBlackout| {
            if raw.to.0 <= raw.from.0 {
                return Err(format!(
                    "the blackout ends ({}) before it starts ({})",
                    minutes(raw.to.0),
                    minutes(raw.from.0)
                ));
            }
            Ok(Blackout { from: raw.from.0, to: raw.to.0, reason: raw.reason })
        })
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a cron expression like \"0 18 * * 5\"", CronSchedule::parse)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeze {
    freeze_start: CronSchedule,
    freeze_end: CronSchedule,
    #[serde(default)]
    cron_timezone: Option<Zone>,
}

impl<'de> Deserialize<'de> for Freeze {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "a freeze {freeze_start, freeze_end, cron_timezone}", |raw: RawFreeze| {
            Ok(Freeze {
                freeze_start: raw.freeze_start,
                freeze_end: raw.freeze_end,
                cron_timezone: raw.cron_timezone.unwrap_or_else(Zone::utc),
            })
        })
    }
}

/// `Option<Zoned>` as RFC 3339 with the offset and no zone annotation.
mod rfc3339_with_offset {
    use jiff::fmt::temporal::{Pieces, PiecesOffset};
    use jiff::tz::{Offset, TimeZone};
    use jiff::{Timestamp, Zoned};
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(value: &Option<Zoned>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(z) => s.collect_str(&z.timestamp().display_with_offset(z.offset())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Zoned>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
        let bad = || de::Error::custom(format!("\"{text}\" is not an RFC 3339 time with an offset"));
        let ts: Timestamp = text.parse().map_err(|_| bad())?;
        let offset = match Pieces::parse(text.as_str()).map_err(|_| bad())?.offset() {
            Some(PiecesOffset::Numeric(n)) => n.offset(),
            _ => Offset::UTC,
        };
        Ok(Some(ts.to_zoned(TimeZone::fixed(offset))))
    }
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
