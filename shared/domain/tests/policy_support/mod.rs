//! What the change policy tests share: DESIGN.md's example policy, and a policy's verdict for an
//! environment at a moment.

use gatehouse_domain::policy::ChangePolicy;
use jiff::Timestamp;

pub const DESIGN_EXAMPLE: &str = r#"
environments:
  production:
    timezone: Europe/Berlin
    windows:                  # if present, deploys only inside one of these
      - {days: [mon, tue, wed, thu], start: "19:00", end: "23:00"}
      - {days: [sat, sun], start: "00:00", end: "24:00"}
    blackouts:                # never inside these
      - {from: "2026-12-20T00:00", to: "2027-01-04T00:00", reason: "Year-end freeze"}
    freezes:                  # recurring, as GitLab deploy freezes
      - {freeze_start: "0 18 * * 5", freeze_end: "0 8 * * 1", cron_timezone: "UTC"}
    respect_planned_window: true   # only between the change's planned start_date and end_date
"#;

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn policy(yaml: &str) -> ChangePolicy {
    ChangePolicy::parse(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// `(open, next_open_at as RFC 3339 with offset, rule)`.
pub fn at(p: &ChangePolicy, env: &str, now: &str, planned: Option<(&str, &str)>) -> (bool, Option<String>, String) {
    let v = p.evaluate(env, ts(now), planned.map(|(a, b)| (ts(a), ts(b))));
    let json = serde_json::to_value(&v).unwrap();
    let next = json["next_open_at"].as_str().map(str::to_string);
    (v.open, next, v.rule)
}
