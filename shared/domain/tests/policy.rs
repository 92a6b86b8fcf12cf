//! The change policy of the CI change gate, as evaluated: each rule, their combination, and
//! daylight-saving switches. Parsing and its errors are in `policy_parsing.rs`.

use std::time::Instant;

use gatehouse_domain::policy::{ChangePolicy, WindowVerdict};
use jiff::{SignedDuration, Timestamp};

mod policy_support;
use policy_support::{DESIGN_EXAMPLE, at, policy, ts};

fn closed(p: &ChangePolicy, now: &str, next: Option<&str>) -> String {
    let (open, n, rule) = at(p, "production", now, None);
    assert!(!open, "{now} should be closed ({rule})");
    assert_eq!(n.as_deref(), next, "next_open_at from {now} ({rule})");
    rule
}

fn open(p: &ChangePolicy, now: &str) -> String {
    let (open, n, rule) = at(p, "production", now, None);
    assert!(open, "{now} should be open (next {n:?}, {rule})");
    rule
}

// ---------------------------------------------------------------------------------------------
// Each rule
// ---------------------------------------------------------------------------------------------

const WINDOWS: &str = r#"
environments:
  production:
    timezone: Europe/Berlin
    windows:
      - {days: [mon, tue, wed, thu], start: "19:00", end: "23:00"}
      - {days: [sat, sun], start: "00:00", end: "24:00"}
"#;

#[test]
fn weekly_windows() {
    let p = policy(WINDOWS);
    // Tuesday 2026-12-01, 17:00 in Berlin: the answer of DESIGN.md.
    let rule = closed(&p, "2026-12-01T16:00:00Z", Some("2026-12-01T19:00:00+01:00"));
    assert_eq!(rule, "weekly window mon–thu 19:00–23:00 Europe/Berlin");
    assert_eq!(open(&p, "2026-12-01T18:00:00Z"), "weekly window mon–thu 19:00–23:00 Europe/Berlin");
    open(&p, "2026-12-01T21:59:59Z");
    // 23:00 is the end: closed, next Wednesday 19:00.
    closed(&p, "2026-12-01T22:00:00Z", Some("2026-12-02T19:00:00+01:00"));
    // Thursday night: the weekend window is next.
    let rule = closed(&p, "2026-12-03T22:30:00Z", Some("2026-12-05T00:00:00+01:00"));
    assert_eq!(rule, "weekly window sat, sun 00:00–24:00 Europe/Berlin");
    // The whole weekend is open, through Sunday 23:59.
    assert_eq!(open(&p, "2026-12-05T23:00:00Z"), "weekly window sat, sun 00:00–24:00 Europe/Berlin");
    open(&p, "2026-12-06T22:59:00Z");
    closed(&p, "2026-12-06T23:00:00Z", Some("2026-12-07T19:00:00+01:00"));
    // Seconds are kept when the moment asked about is open.
    let (_, next, _) = at(&p, "production", "2026-12-01T18:30:15.5Z", None);
    assert_eq!(next.as_deref(), Some("2026-12-01T19:30:15.5+01:00"));
}

#[test]
fn blackouts() {
    let p = policy(
        r#"
environments:
  production:
    timezone: Europe/Berlin
    blackouts:
      - {from: "2026-12-20T00:00", to: "2027-01-04T00:00", reason: "Year-end freeze"}
      - {from: "2027-01-04T00:00", to: "2027-01-04T06:00"}
"#,
    );
    open(&p, "2026-12-19T22:59:00Z");
    let rule = closed(&p, "2026-12-19T23:00:00Z", Some("2027-01-04T06:00:00+01:00"));
    assert_eq!(rule, "blackout 2026-12-20 00:00 – 2027-01-04 00:00 Europe/Berlin: Year-end freeze");
    let rule = closed(&p, "2027-01-04T02:00:00Z", Some("2027-01-04T06:00:00+01:00"));
    assert_eq!(rule, "blackout 2027-01-04 00:00 – 2027-01-04 06:00 Europe/Berlin");
    open(&p, "2027-01-04T05:00:00Z");
}

const FREEZE: &str = r#"
environments:
  production:
    timezone: Europe/Berlin
    freezes:
      - {freeze_start: "0 18 * * 5", freeze_end: "0 8 * * 1", cron_timezone: "UTC"}
"#;

#[test]
fn recurring_freezes() {
    let p = policy(FREEZE);
    // Friday 2026-12-04.
    open(&p, "2026-12-04T17:59:59Z");
    let rule = closed(&p, "2026-12-04T18:00:00Z", Some("2026-12-07T09:00:00+01:00"));
    assert_eq!(rule, "deploy freeze 0 18 * * 5 → 0 8 * * 1 (UTC)");
    closed(&p, "2026-12-06T12:00:00Z", Some("2026-12-07T09:00:00+01:00"));
    closed(&p, "2026-12-07T07:59:00Z", Some("2026-12-07T09:00:00+01:00"));
    open(&p, "2026-12-07T08:00:00Z");
    open(&p, "2026-12-09T12:00:00Z");
}

#[test]
fn freezes_follow_the_cron_time_zone_and_gitlab_semantics() {
    // Two starts before one end: the freeze runs from the latest start to the first end after it.
    let p = policy(
        r#"
environments:
  production:
    freezes:
      - {freeze_start: "0 9 1,15 * *", freeze_end: "0 17 20 * *", cron_timezone: America/New_York}
"#,
    );
    // 2026-07-10: after the 1st 09:00 EDT, before the 20th 17:00 EDT.
    let (open, next, _) = at(&p, "production", "2026-07-10T12:00:00Z", None);
    assert!(!open);
    assert_eq!(next.as_deref(), Some("2026-07-20T21:00:00+00:00"));
    // Between the 20th and the next 1st: open.
    assert!(at(&p, "production", "2026-07-25T12:00:00Z", None).0);
    assert!(!at(&p, "production", "2026-08-01T13:00:00Z", None).0);
    assert!(at(&p, "production", "2026-08-01T12:59:00Z", None).0);
}

#[test]
fn the_planned_window_of_the_change() {
    let p = policy("environments:\n  production:\n    timezone: Europe/Berlin\n    respect_planned_window: true\n");
    let planned = Some(("2026-12-01T18:00:00Z", "2026-12-01T20:00:00Z"));
    let (open, next, rule) = at(&p, "production", "2026-12-01T12:00:00Z", planned);
    assert!(!open);
    assert_eq!(next.as_deref(), Some("2026-12-01T19:00:00+01:00"));
    assert_eq!(rule, "planned window of the change");
    let (open, _, rule) = at(&p, "production", "2026-12-01T19:59:00Z", planned);
    assert!(open);
    assert_eq!(rule, "planned window of the change");
    // Over: it never opens again for this change.
    let (open, next, rule) = at(&p, "production", "2026-12-01T20:00:00Z", planned);
    assert!(!open);
    assert_eq!(next, None);
    assert_eq!(rule, "planned window of the change");
    // A change without a plan is not held back by this rule.
    assert!(at(&p, "production", "2026-12-01T12:00:00Z", None).0);
    // Without respect_planned_window the plan does not matter.
    let p = policy("environments:\n  production: {timezone: Europe/Berlin}\n");
    assert!(at(&p, "production", "2026-12-01T12:00:00Z", planned).0);
}

#[test]
fn an_environment_the_policy_does_not_name_is_blocked_unless_it_has_a_default() {
    let p = policy(DESIGN_EXAMPLE);
    let v = p.evaluate("staging", ts("2026-12-24T12:00:00Z"), None);
    assert!(!v.open && v.unnamed && v.next_open_at.is_none());
    assert!(v.rule.contains("not in the change policy"), "{}", v.rule);
    let p = policy("environments:\n  production: {timezone: Europe/Berlin}\ndefault:\n  timezone: UTC\n");
    let v = p.evaluate("staging", ts("2026-12-24T12:00:00Z"), None);
    assert!(v.open && !v.unnamed);
    assert_eq!(v.next_open_at.unwrap().timestamp(), ts("2026-12-24T12:00:00Z"));
    // Without a policy file, every environment is open.
    assert!(ChangePolicy::default().evaluate("anywhere", ts("2026-12-24T12:00:00Z"), None).open);
}

// ---------------------------------------------------------------------------------------------
// Combination
// ---------------------------------------------------------------------------------------------

#[test]
fn all_rules_together() {
    let p = policy(DESIGN_EXAMPLE);
    let planned = Some(("2026-11-30T00:00:00Z", "2027-02-01T00:00:00Z"));
    // Friday 2026-12-18, 20:00 in Berlin: outside the windows and frozen until Monday 08:00 UTC;
    // the year-end blackout then lasts until 2027-01-04 00:00, the Monday window opens at 19:00.
    let (open, next, rule) = at(&p, "production", "2026-12-18T19:00:00Z", planned);
    assert!(!open);
    assert_eq!(next.as_deref(), Some("2027-01-04T19:00:00+01:00"));
    assert_eq!(rule, "deploy freeze 0 18 * * 5 → 0 8 * * 1 (UTC)");
    // Inside the blackout it is the blackout that decides.
    let (_, next, rule) = at(&p, "production", "2026-12-28T19:00:00Z", planned);
    assert_eq!(next.as_deref(), Some("2027-01-04T19:00:00+01:00"));
    assert_eq!(rule, "blackout 2026-12-20 00:00 – 2027-01-04 00:00 Europe/Berlin: Year-end freeze");
    // The plan moves the opening further: Tuesday 2027-01-05 19:30.
    let planned = Some(("2027-01-05T18:30:00Z", "2027-01-05T21:00:00Z"));
    let (_, next, _) = at(&p, "production", "2026-12-28T19:00:00Z", planned);
    assert_eq!(next.as_deref(), Some("2027-01-05T19:30:00+01:00"));
    // A Saturday outside blackouts is frozen (the freeze runs Friday 18:00 to Monday 08:00 UTC).
    let (open, next, rule) = at(&p, "production", "2026-12-12T10:00:00Z", None);
    assert!(!open);
    assert_eq!(next.as_deref(), Some("2026-12-14T19:00:00+01:00"));
    assert_eq!(rule, "deploy freeze 0 18 * * 5 → 0 8 * * 1 (UTC)");
    // A Wednesday evening is open.
    let (open, _, rule) = at(&p, "production", "2026-12-09T19:00:00Z", None);
    assert!(open);
    assert_eq!(rule, "weekly window mon–thu 19:00–23:00 Europe/Berlin");
}

#[test]
fn a_policy_that_never_opens_gives_no_time_and_is_quick() {
    let p = policy(
        r#"
environments:
  production:
    windows:
      - {days: [mon], start: "10:00", end: "11:00"}
      - {days: [thu], start: "10:00", end: "11:00"}
    freezes:
      - {freeze_start: "0 0 * * mon", freeze_end: "0 0 * * tue"}
      - {freeze_start: "0 0 * * thu", freeze_end: "0 12 * * thu"}
"#,
    );
    let started = Instant::now();
    let (open, next, _) = at(&p, "production", "2026-01-01T00:00:00Z", None);
    assert!(!open);
    assert_eq!(next, None);
    assert!(started.elapsed().as_secs() < 2, "took {:?}", started.elapsed());
}

#[test]
fn next_open_at_is_the_first_open_minute() {
    // Brute force over two weeks, minute by minute, against the answer of each moment.
    let p = policy(
        r#"
environments:
  production:
    timezone: America/New_York
    windows:
      - {days: [mon, wed, fri], start: "09:30", end: "11:00"}
      - {days: [tue], start: "22:00", end: "24:00"}
      - {days: [wed], start: "00:00", end: "01:15"}
    blackouts:
      - {from: "2026-10-28T10:00", to: "2026-10-30T10:15"}
    freezes:
      - {freeze_start: "45 23 * * 2", freeze_end: "30 0 * * 3", cron_timezone: Europe/Berlin}
      - {freeze_start: "0 15 * * fri", freeze_end: "0 14 * * mon", cron_timezone: UTC}
"#,
    );
    let mut t = ts("2026-10-26T00:00:00Z");
    let end = ts("2026-11-09T00:00:00Z");
    let mut expected_next: Option<Timestamp> = None;
    // Walk backwards so that the next open minute is known at each step.
    let mut minutes = Vec::new();
    while t < end {
        minutes.push(t);
        t = t.checked_add(SignedDuration::from_mins(1)).unwrap();
    }
    let mut opened = 0;
    for (i, m) in minutes.iter().enumerate().rev() {
        let v: WindowVerdict = p.evaluate("production", *m, None);
        if v.open {
            expected_next = Some(*m);
            opened += 1;
        }
        if i % 7 == 0 && expected_next.is_some() {
            assert_eq!(v.next_open_at.map(|z| z.timestamp()), expected_next, "from {m}: {}", v.rule);
        }
    }
    assert!(opened > 100, "{opened}");
}

#[test]
fn verdicts_serialise_as_in_the_design() {
    let p = policy(WINDOWS);
    let v = p.evaluate("production", ts("2026-12-01T16:00:00Z"), None);
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "open": false,
            "next_open_at": "2026-12-01T19:00:00+01:00",
            "rule": "weekly window mon–thu 19:00–23:00 Europe/Berlin"
        })
    );
    let back: WindowVerdict = serde_json::from_value(json).unwrap();
    assert_eq!(back, v);
    assert_eq!(back.next_open_at.unwrap().offset().seconds(), 3600);
    let none: WindowVerdict = serde_json::from_str(r#"{"open":false,"next_open_at":null,"rule":"x"}"#).unwrap();
    assert_eq!(none.next_open_at, None);
}

// ---------------------------------------------------------------------------------------------
// Daylight-saving switches
// ---------------------------------------------------------------------------------------------

fn sunday_window(zone: &str, start: &str, end: &str) -> ChangePolicy {
    policy(&format!(
        "environments:\n  production:\n    timezone: {zone}\n    windows:\n      - {{days: [sun], start: \"{start}\", end: \"{end}\"}}\n"
    ))
}

#[test]
fn berlin_spring_forward_shortens_windows() {
    // 2026-03-29: at 01:00 UTC the clocks go from 02:00 CET to 03:00 CEST.
    let p = sunday_window("Europe/Berlin", "01:00", "03:00");
    closed(&p, "2026-03-28T12:00:00Z", Some("2026-03-29T01:00:00+01:00"));
    open(&p, "2026-03-29T00:00:00Z");
    open(&p, "2026-03-29T00:59:59Z");
    // One hour long that day: 03:00 CEST is the end.
    closed(&p, "2026-03-29T01:00:00Z", Some("2026-04-05T01:00:00+02:00"));

    // A window starting in the skipped hour opens when the clock jumps into it.
    let p = sunday_window("Europe/Berlin", "02:30", "04:00");
    closed(&p, "2026-03-29T00:00:00Z", Some("2026-03-29T03:00:00+02:00"));
    open(&p, "2026-03-29T01:00:00Z");
    closed(&p, "2026-03-29T02:00:00Z", Some("2026-04-05T02:30:00+02:00"));

    // A window inside the skipped hour does not happen that day.
    let p = sunday_window("Europe/Berlin", "02:00", "02:30");
    closed(&p, "2026-03-28T12:00:00Z", Some("2026-04-05T02:00:00+02:00"));
}

#[test]
fn berlin_fall_back_lengthens_windows() {
    // 2026-10-25: at 01:00 UTC the clocks go from 03:00 CEST back to 02:00 CET.
    let p = sunday_window("Europe/Berlin", "01:00", "03:00");
    closed(&p, "2026-10-24T12:00:00Z", Some("2026-10-25T01:00:00+02:00"));
    open(&p, "2026-10-24T23:00:00Z");
    open(&p, "2026-10-25T00:30:00Z"); // 02:30 CEST
    open(&p, "2026-10-25T01:30:00Z"); // 02:30 CET
    open(&p, "2026-10-25T01:59:59Z");
    // Three hours long that day: 03:00 CET is the end.
    closed(&p, "2026-10-25T02:00:00Z", Some("2026-11-01T01:00:00+01:00"));

    // A window inside the repeated hour is open on both passes.
    let p = sunday_window("Europe/Berlin", "02:00", "02:30");
    open(&p, "2026-10-25T00:15:00Z"); // 02:15 CEST
    closed(&p, "2026-10-25T00:45:00Z", Some("2026-10-25T02:00:00+01:00")); // 02:45 CEST
    open(&p, "2026-10-25T01:00:00Z"); // 02:00 CET
    closed(&p, "2026-10-25T01:30:00Z", Some("2026-11-01T02:00:00+01:00"));
}

#[test]
fn new_york_spring_forward() {
    // 2026-03-08: at 07:00 UTC the clocks go from 02:00 EST to 03:00 EDT.
    let p = sunday_window("America/New_York", "01:00", "03:00");
    closed(&p, "2026-03-08T05:00:00Z", Some("2026-03-08T01:00:00-05:00"));
    open(&p, "2026-03-08T06:00:00Z");
    open(&p, "2026-03-08T06:59:00Z");
    closed(&p, "2026-03-08T07:00:00Z", Some("2026-03-15T01:00:00-04:00"));

    let p = sunday_window("America/New_York", "02:15", "02:45");
    closed(&p, "2026-03-08T05:00:00Z", Some("2026-03-15T02:15:00-04:00"));

    // A blackout ending in the skipped hour ends at the jump.
    let p = policy(
        "environments:\n  production:\n    timezone: America/New_York\n    blackouts:\n      \
         - {from: \"2026-03-07T12:00\", to: \"2026-03-08T02:30\"}\n",
    );
    closed(&p, "2026-03-08T06:30:00Z", Some("2026-03-08T03:00:00-04:00"));
    open(&p, "2026-03-08T07:00:00Z");
}

#[test]
fn new_york_fall_back() {
    // 2026-11-01: at 06:00 UTC the clocks go from 02:00 EDT back to 01:00 EST.
    let p = sunday_window("America/New_York", "01:00", "02:00");
    closed(&p, "2026-11-01T04:00:00Z", Some("2026-11-01T01:00:00-04:00"));
    open(&p, "2026-11-01T05:00:00Z"); // 01:00 EDT
    open(&p, "2026-11-01T06:30:00Z"); // 01:30 EST
    // Two hours long that day.
    closed(&p, "2026-11-01T07:00:00Z", Some("2026-11-08T01:00:00-05:00"));

    // A blackout ending in the repeated hour ends at its second pass.
    let p = policy(
        "environments:\n  production:\n    timezone: America/New_York\n    blackouts:\n      \
         - {from: \"2026-10-31T12:00\", to: \"2026-11-01T01:30\"}\n",
    );
    closed(&p, "2026-11-01T05:45:00Z", Some("2026-11-01T01:30:00-05:00"));
    open(&p, "2026-11-01T06:30:00Z");

    // A freeze in New York time ending in the repeated hour ends at its second pass too.
    let p = policy(
        "environments:\n  production:\n    timezone: America/New_York\n    freezes:\n      \
         - {freeze_start: \"0 0 * * sun\", freeze_end: \"30 1 * * sun\", cron_timezone: America/New_York}\n",
    );
    closed(&p, "2026-11-01T05:45:00Z", Some("2026-11-01T01:30:00-05:00"));
    open(&p, "2026-11-01T06:30:00Z");
    open(&p, "2026-11-01T03:59:00Z");
}

#[test]
fn freezes_in_a_zone_with_a_switch() {
    // Saturday 22:00 to Sunday 04:00 Berlin time, over the spring-forward night.
    let p = policy(
        "environments:\n  production:\n    timezone: Europe/Berlin\n    freezes:\n      \
         - {freeze_start: \"0 22 * * sat\", freeze_end: \"0 4 * * sun\", cron_timezone: Europe/Berlin}\n",
    );
    open(&p, "2026-03-28T20:59:00Z");
    closed(&p, "2026-03-28T21:00:00Z", Some("2026-03-29T04:00:00+02:00"));
    closed(&p, "2026-03-29T01:30:00Z", Some("2026-03-29T04:00:00+02:00"));
    open(&p, "2026-03-29T02:00:00Z");
    // And over the fall-back night: 22:00 CEST to 04:00 CET.
    closed(&p, "2026-10-24T20:00:00Z", Some("2026-10-25T04:00:00+01:00"));
    open(&p, "2026-10-25T03:00:00Z");
}
