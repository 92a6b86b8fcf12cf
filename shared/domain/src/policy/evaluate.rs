//! Combining an environment's rules: whether deploying is allowed at a moment, which rule decided,
//! and when every rule next allows it.

use jiff::{SignedDuration, Timestamp};

use super::periods::minutes;
use super::zone::instants_of;
use super::{EnvironmentPolicy, SEARCH_HORIZON_DAYS, WindowVerdict};

/// How far ahead the next opening of the weekly windows is looked for.
const WINDOW_SEARCH_DAYS: i64 = 15;
/// A bound on the forward search's steps (each step jumps to a rule's boundary).
const MAX_STEPS: usize = 100_000;

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
    /// See [`ChangePolicy::evaluate`](super::ChangePolicy::evaluate); `environment` only names it in sentences.
    pub fn evaluate(
        &self,
        environment: &str,
        now: Timestamp,
        planned: Option<(Timestamp, Timestamp)>,
    ) -> WindowVerdict {
        let tz = self.timezone.time_zone();
        let blackouts: Vec<(Timestamp, Timestamp)> = self.blackouts.iter().map(|b| b.instants(tz)).collect();
        let blocks = self.blocks(now, planned, &blackouts);
        if blocks.is_empty() {
            return WindowVerdict {
                open: true,
                next_open_at: Some(now.to_zoned(tz.clone())),
                rule: self.open_rule(environment, now, planned),
                unnamed: false,
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
        WindowVerdict { open: false, next_open_at: next_open.map(|t| t.to_zoned(tz.clone())), rule, unnamed: false }
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
        let local = self.timezone.time_zone().to_datetime(t);
        self.windows.iter().position(|w| w.contains(local))
    }

    /// The first moment after `t` inside a window, and that window. The wall clock enters a
    /// window either when it reads the window's start (once, or twice in a repeated hour) or when
    /// it jumps (a time zone transition), so those moments are the only candidates.
    fn next_window_opening(&self, t: Timestamp) -> Option<(usize, Timestamp)> {
        let tz = self.timezone.time_zone();
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
