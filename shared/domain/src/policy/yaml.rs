//! Reading the policy's YAML: every problem at its line and column, with the rules checked as
//! they are read.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use jiff::civil::{DateTime, Weekday};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::periods::minutes;
use super::window::DAY_NAMES;
use super::{Blackout, ChangeType, CronSchedule, EnvironmentPolicy, Freeze, TimeOfDay, Window, Zone};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyFields {
    environments: Environments,
    #[serde(default)]
    default: Option<EnvironmentPolicy>,
}

pub(super) struct RawPolicy {
    pub(super) environments: Environments,
    pub(super) default: Option<EnvironmentPolicy>,
}

impl<'de> Deserialize<'de> for RawPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "a mapping with the keys `environments` and (optional) `default`", |raw: RawPolicyFields| {
            Ok(RawPolicy { environments: raw.environments, default: raw.default })
        })
    }
}

pub(super) struct Environments(pub(super) BTreeMap<String, EnvironmentPolicy>);

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
pub(crate) fn checked_map<'de, D, R, T>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(R) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
{
    struct V<R, T, C> {
        expecting: &'static str,
        check: C,
        read: PhantomData<fn(R) -> T>,
    }
    impl<'de, R: Deserialize<'de>, T, C: FnOnce(R) -> Result<T, String>> Visitor<'de> for V<R, T, C> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = R::deserialize(de::value::MapAccessDeserializer::new(map))?;
            (self.check)(raw).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V { expecting, check, read: PhantomData })
}

/// Reads a string and converts it with `parse`; an error is reported at the string.
pub(crate) fn parsed_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
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
pub(crate) fn non_empty_seq<'de, D, T>(d: D, expecting: &'static str, empty: &'static str) -> Result<Vec<T>, D::Error>
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
    #[serde(default)]
    protected: Option<bool>,
    #[serde(default)]
    projects: Option<Vec<String>>,
    #[serde(default)]
    assignment_group: Option<String>,
    #[serde(default)]
    cmdb_ci: Option<String>,
    #[serde(default)]
    risk: Option<String>,
    #[serde(default)]
    impact: Option<String>,
    #[serde(default)]
    implementation_plan: Option<String>,
    #[serde(default)]
    backout_plan: Option<String>,
    #[serde(default)]
    test_plan: Option<String>,
    #[serde(default)]
    change_type: Option<ChangeTypeName>,
    #[serde(default)]
    standard_template: Option<String>,
}

/// `change_type`'s value, checked at the value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ChangeTypeName {
    Normal,
    Standard,
    Emergency,
}

impl<'de> Deserialize<'de> for ChangeTypeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a change type (normal, standard or emergency)", |s| match s.trim() {
            "normal" => Ok(ChangeTypeName::Normal),
            "standard" => Ok(ChangeTypeName::Standard),
            "emergency" => Ok(ChangeTypeName::Emergency),
            other => Err(format!("unknown change_type \"{other}\" (expected normal, standard or emergency)")),
        })
    }
}

/// `change_type` with `standard_template`: a template exactly when the type is standard.
fn change_type(name: Option<ChangeTypeName>, template: Option<String>) -> Result<ChangeType, String> {
    const NEEDS_TEMPLATE: &str = "change_type standard needs standard_template: the name or sys_id of the \
                                  ServiceNow standard change template its changes are created from";
    match (name.unwrap_or(ChangeTypeName::Normal), template) {
        (ChangeTypeName::Standard, None) => Err(NEEDS_TEMPLATE.into()),
        (ChangeTypeName::Standard, Some(t)) if t.trim().is_empty() => {
            Err(format!("standard_template is empty: {NEEDS_TEMPLATE}"))
        }
        (ChangeTypeName::Standard, Some(t)) if t.chars().any(char::is_control) || t.chars().count() > 200 => {
            Err("standard_template must be a template name or sys_id: at most 200 printable characters".into())
        }
        (ChangeTypeName::Standard, Some(t)) => Ok(ChangeType::Standard { template: t.trim().to_string() }),
        (other, Some(_)) => Err(format!(
            "standard_template is set but change_type is {}: a template is only for change_type: standard",
            if other == ChangeTypeName::Emergency { "emergency" } else { "normal" }
        )),
        (ChangeTypeName::Normal, None) => Ok(ChangeType::Normal),
        (ChangeTypeName::Emergency, None) => Ok(ChangeType::Emergency),
    }
}

impl<'de> Deserialize<'de> for EnvironmentPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(
            d,
            "an environment's rules (timezone, windows, blackouts, freezes, respect_planned_window, protected, projects, \
             assignment_group, cmdb_ci, risk, impact, implementation_plan, backout_plan, test_plan, change_type, \
             standard_template)",
            |raw: RawEnvironment| {
                let change_type = change_type(raw.change_type, raw.standard_template)?;
                Ok(EnvironmentPolicy {
                    change_type,
                    timezone: raw.timezone.unwrap_or_else(Zone::utc),
                    windows: raw.windows.map(|w| w.0).unwrap_or_default(),
                    blackouts: raw.blackouts.unwrap_or_default(),
                    freezes: raw.freezes.unwrap_or_default(),
                    respect_planned_window: raw.respect_planned_window.unwrap_or(false),
                    protected: raw.protected.unwrap_or(true),
                    projects: raw.projects,
                    details: crate::changes::ChangeDetails {
                        assignment_group: raw.assignment_group,
                        cmdb_ci: raw.cmdb_ci,
                        risk: raw.risk,
                        impact: raw.impact,
                        implementation_plan: raw.implementation_plan,
                        backout_plan: raw.backout_plan,
                        test_plan: raw.test_plan,
                    },
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
            if raw.start.minutes() >= 24 * 60 {
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
