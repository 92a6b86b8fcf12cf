//! The change policy of the CI change gate, as parsed: DESIGN.md's example, defaults, change
//! types, and errors with line numbers. What a policy decides is in `policy.rs`.

use gatehouse_domain::policy::{ChangePolicy, PolicyError};

mod policy_support;
use policy_support::{DESIGN_EXAMPLE, at, policy};

fn error(yaml: &str) -> PolicyError {
    match ChangePolicy::parse(yaml) {
        Ok(p) => panic!("parsed: {p:?}"),
        Err(e) => e,
    }
}

fn assert_error(yaml: &str, line: usize, needle: &str) -> PolicyError {
    let e = error(yaml);
    assert_eq!(e.line, Some(line), "{e}");
    assert!(e.column.is_some(), "{e}");
    assert!(e.message.contains(needle), "expected {needle:?} in: {e}");
    assert!(e.to_string().starts_with(&format!("change policy, line {line}, column ")), "{e}");
    e
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[test]
fn the_design_example_parses() {
    let p = policy(DESIGN_EXAMPLE);
    let prod = p.environment("production").unwrap();
    assert_eq!(prod.timezone.name(), "Europe/Berlin");
    assert_eq!(prod.windows.len(), 2);
    assert_eq!(prod.windows[0].to_string(), "mon–thu 19:00–23:00");
    assert_eq!(prod.windows[1].to_string(), "sat, sun 00:00–24:00");
    assert_eq!(prod.blackouts[0].reason.as_deref(), Some("Year-end freeze"));
    assert_eq!(prod.freezes[0].freeze_start.expression(), "0 18 * * 5");
    assert_eq!(prod.freezes[0].cron_timezone.name(), "UTC");
    assert!(prod.respect_planned_window);
    assert_eq!(p.environments().count(), 1);
}

#[test]
fn the_example_in_design_md_itself_parses() {
    // A verbatim copy of DESIGN.md's example, kept with the other published samples.
    let p = policy(include_str!("../../../sim/samples/change-policy-design-example.yaml"));
    assert_eq!(p, policy(DESIGN_EXAMPLE));
}

#[test]
fn defaults_and_empty_environments() {
    let p = policy(
        "environments:\n  staging:\n  dev: {}\n  qa:\n    windows:\n      - {start: \"09:00\", end: \"17:00\"}\n",
    );
    let staging = p.environment("staging").unwrap();
    assert_eq!(staging.timezone.name(), "UTC");
    assert!(staging.windows.is_empty() && staging.blackouts.is_empty() && staging.freezes.is_empty());
    assert!(!staging.respect_planned_window);
    assert_eq!(p.environment("qa").unwrap().windows[0].days.len(), 7);
    let (open, next, rule) = at(&p, "staging", "2026-06-01T12:00:00Z", None);
    assert!(open);
    assert_eq!(next.as_deref(), Some("2026-06-01T12:00:00+00:00"));
    assert_eq!(rule, "no window, blackout or freeze closes environment staging now");
    let (open, _, rule) = at(&p, "qa", "2026-06-01T12:00:00Z", None);
    assert!(open);
    assert_eq!(rule, "weekly window mon–sun 09:00–17:00 UTC");
    assert!(policy("environments: {}\n").environments().next().is_none());
}

#[test]
fn malformed_policies_name_the_line_and_the_reason() {
    let head = "environments:\n  production:\n    timezone: Europe/Berlin\n";
    // Unknown keys, at every level.
    assert_error("environment:\n  production: {}\n", 1, "unknown field `environment`");
    assert_error(&format!("{head}    freezs: []\n"), 4, "unknown field `freezs`");
    let e = assert_error(
        &format!("{head}    windows:\n      - {{days: [mon], start: \"19:00\", end: \"23:00\", until: x}}\n"),
        5,
        "unknown field `until`",
    );
    assert!(e.message.contains("environments.production.windows[0]"), "{e}");
    // Bad day name: the line and the column of the name.
    let e = assert_error(
        &format!("{head}    windows:\n      - {{days: [mon, tuesday, wensday], start: \"19:00\", end: \"23:00\"}}\n"),
        5,
        "unknown day \"wensday\"",
    );
    assert_eq!(e.column, Some(31), "{e}");
    // Bad times.
    assert_error(
        &format!("{head}    windows:\n      - {{days: [mon], start: \"25:00\", end: \"26:00\"}}\n"),
        5,
        "\"25:00\"",
    );
    assert_error(
        &format!("{head}    windows:\n      - {{days: [mon], start: \"19:00\", end: \"19:75\"}}\n"),
        5,
        "minutes",
    );
    assert_error(
        &format!("{head}    windows:\n      - {{days: [mon], start: 1900, end: \"23:00\"}}\n"),
        5,
        "expected HH:MM",
    );
    assert_error(
        &format!("{head}    windows:\n      - {{days: [mon], start: \"24:00\", end: \"24:00\"}}\n"),
        5,
        "24:00",
    );
    // End before start (24:00 is fine as an end).
    let e = assert_error(
        &format!(
            "{head}    windows:\n      - {{days: [mon], start: \"00:00\", end: \"24:00\"}}\n      - days: [fri]\n        \
             start: \"22:00\"\n        end: \"02:00\"\n"
        ),
        6,
        "ends at 02:00 before it starts at 22:00",
    );
    assert!(e.message.contains("split it in two"), "{e}");
    assert_error(&format!("{head}    windows: []\n"), 4, "windows is empty");
    assert_error(
        &format!("{head}    windows:\n      - {{days: [], start: \"01:00\", end: \"02:00\"}}\n"),
        5,
        "days is empty",
    );
    assert_error(&format!("{head}    windows:\n      - {{days: [mon], end: \"02:00\"}}\n"), 5, "missing field `start`");
    // Time zones.
    assert_error("environments:\n  production:\n    timezone: Europe/Berln\n", 3, "unknown time zone \"Europe/Berln\"");
    assert_error(
        &format!(
            "{head}    freezes:\n      - {{freeze_start: \"0 18 * * 5\", freeze_end: \"0 8 * * 1\", cron_timezone: Mars/Olympus}}\n"
        ),
        5,
        "unknown time zone \"Mars/Olympus\"",
    );
    // Cron expressions.
    let e = assert_error(
        &format!("{head}    freezes:\n      - freeze_start: \"0 18 * * 5\"\n        freeze_end: \"0 8 * * funday\"\n"),
        6,
        "invalid cron expression \"0 8 * * funday\"",
    );
    assert!(e.message.contains("day of week"), "{e}");
    assert_error(
        &format!("{head}    freezes:\n      - {{freeze_start: \"0 18 * *\", freeze_end: \"0 8 * * 1\"}}\n"),
        5,
        "4 fields",
    );
    assert_error(
        &format!("{head}    freezes:\n      - {{freeze_start: \"0 18 * * 5\"}}\n"),
        5,
        "missing field `freeze_end`",
    );
    // Blackouts.
    assert_error(
        &format!("{head}    blackouts:\n      - {{from: \"2027-01-04T00:00\", to: \"2026-12-20T00:00\", reason: x}}\n"),
        5,
        "the blackout ends (2026-12-20 00:00) before it starts (2027-01-04 00:00)",
    );
    assert_error(
        &format!("{head}    blackouts:\n      - {{from: \"2026-13-01T00:00\", to: \"2027-01-04T00:00\"}}\n"),
        5,
        "invalid date",
    );
    assert_error(
        &format!("{head}    blackouts:\n      - {{from: \"2026-12-20T00:00+01:00\", to: \"2027-01-04T00:00\"}}\n"),
        5,
        "local times",
    );
    // Types and structure.
    assert_error(&format!("{head}    respect_planned_window: sometimes\n"), 4, "invalid type");
    assert_error(
        "environments:\n  production: {}\n  production: {}\n",
        3,
        "environment \"production\" is defined twice",
    );
    assert_error("- a\n", 1, "expected a mapping with the keys `environments` and (optional) `default`");
    assert_error("environments:\n  production:\n    windows: [\n", 4, "");
    let e = error("");
    assert_eq!((e.line, e.message.as_str()), (None, "the policy is empty"));
    assert!(ChangePolicy::parse("environments: {}\n").is_ok());
}

// ---------------------------------------------------------------------------------------------
// Change types
// ---------------------------------------------------------------------------------------------

#[test]
fn change_types_and_standard_templates() {
    use gatehouse_domain::changes::ChangeKind;
    use gatehouse_domain::policy::ChangeType;
    let p = policy(
        "environments:\n  production:\n    change_type: standard\n    standard_template: \"Deploy shop (pre-approved)\"\n  \
         hotfix:\n    change_type: emergency\n  staging:\n    change_type: normal\n  qa: {}\n\
         default:\n  change_type: standard\n  standard_template: 1c8e02ec47410200e90d87e8dee49057\n",
    );
    let standard = ChangeType::Standard { template: "Deploy shop (pre-approved)".into() };
    assert_eq!(p.environment("production").unwrap().change_type, standard);
    assert_eq!(p.environment("hotfix").unwrap().change_type, ChangeType::Emergency);
    assert_eq!(p.environment("staging").unwrap().change_type, ChangeType::Normal);
    assert_eq!(p.environment("qa").unwrap().change_type, ChangeType::Normal, "normal is the default");
    assert_eq!(
        p.environment("unnamed").unwrap().change_type,
        ChangeType::Standard { template: "1c8e02ec47410200e90d87e8dee49057".into() },
        "default: takes a change type too"
    );
    // What a new change becomes: the job's emergency reason wins everywhere.
    let kind = |env: &str, reason: Option<&str>| ChangeKind::of(p.environment(env), reason);
    assert_eq!(kind("production", None), ChangeKind::Standard { template: "Deploy shop (pre-approved)".into() });
    assert_eq!(kind("production", Some("outage")), ChangeKind::Emergency { reason: "outage".into() });
    assert_eq!(kind("staging", None), ChangeKind::Normal);
    assert_eq!(kind("staging", Some("outage")).type_name(), "emergency");
    assert_eq!(kind("hotfix", Some("outage")).emergency_reason(), Some("outage"));
    // An emergency-only environment refuses a request without the reason, naming the field.
    let hotfix = p.environment("hotfix").unwrap();
    match hotfix.check_emergency_reason("hotfix", None) {
        Err(gatehouse_domain::Error::Invalid(errors)) => {
            assert_eq!(errors[0].field, "emergency_reason");
            assert!(errors[0].message.contains("GATEHOUSE_EMERGENCY_REASON"), "{errors:?}");
            assert!(errors[0].message.contains("emergency changes only"), "{errors:?}");
        }
        other => panic!("expected 422 naming emergency_reason, got {other:?}"),
    }
    assert!(hotfix.check_emergency_reason("hotfix", Some("outage")).is_ok());
    assert!(p.environment("production").unwrap().check_emergency_reason("production", None).is_ok());
}

#[test]
fn malformed_change_types_name_the_line_and_the_reason() {
    let head = "environments:\n  production:\n    timezone: UTC\n";
    let e = assert_error(&format!("{head}    change_type: cab\n"), 4, "unknown change_type \"cab\"");
    assert!(e.message.contains("normal, standard or emergency"), "{e}");
    // Standard without its template: reported at the environment's rules, naming the key.
    let e =
        assert_error(&format!("{head}    change_type: standard\n"), 3, "change_type standard needs standard_template");
    assert!(e.message.contains("environments.production"), "{e}");
    assert_error(
        &format!("{head}    change_type: standard\n    standard_template: \"  \"\n"),
        3,
        "standard_template is empty",
    );
    // A template on a type that is not standard.
    assert_error(
        &format!("{head}    change_type: emergency\n    standard_template: Deploy\n"),
        3,
        "standard_template is set but change_type is emergency",
    );
    assert_error(
        &format!("{head}    standard_template: Deploy\n"),
        3,
        "standard_template is set but change_type is normal",
    );
    assert_error("environments: {}\ndefault:\n  change_type: standard\n", 3, "needs standard_template");
    assert_error(&format!("{head}    change_type: [standard]\n"), 4, "invalid type");
}
