//! The approval policy as an operator writes it: the DESIGN.md example read and routing requests,
//! and each mistake refused at its line and column.

use jiff::civil::date;
use jiff::{SignedDuration, civil::Date};
use serde_json::{Map, Value, json};

use super::policy::{ApprovalPolicy, Escalation, RequestFacts, Route, StagePlan};
use crate::model::Chosen;
use crate::policy::PolicyError;

const DESIGN_EXAMPLE: &str = "\
groups:
  platform: [ops1@example.com, ops2@example.com, ops3@example.com]
  security: [sec1@example.com, sec2@example.com, sec3@example.com]
  platform-leads: [lead1@example.com, lead2@example.com]
rules:                       # the first rule whose `when` matches decides
  - name: small-dev
    when: {cloud: [dev], max_vcpus: 2, max_count: 1}
    auto_approve: true
  - name: large
    when: {min_vcpus: 8}     # also: min_count, min_ram_mb, flavor, image, network, metadata
    stages:
      - {group: platform, quorum: 1}
      - {group: security, quorum: 2}
  - name: default
    stages: [{group: platform, quorum: 1}]
delegations:                 # the delegate may decide for the approver, dates inclusive
  - {from: ops1@example.com, to: ops3@example.com, start: 2026-12-20, end: 2027-01-04}
escalation: {after: 24h, group: platform-leads}
";

fn policy(yaml: &str) -> ApprovalPolicy {
    ApprovalPolicy::parse(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// The error `yaml` gives, checked to be at `line`, `column` and to say `needle`.
fn assert_error(yaml: &str, line: usize, column: usize, needle: &str) -> PolicyError {
    let e = ApprovalPolicy::parse(yaml).expect_err("the policy should be refused");
    assert!(e.message.contains(needle), "expected {needle:?} in: {e}");
    assert_eq!((e.line, e.column), (Some(line), Some(column)), "{e}");
    assert!(e.to_string().starts_with(&format!("approval policy, line {line}, column {column}: ")), "{e}");
    e
}

/// A request: `dev` cloud, 1 vCPU, 1 server, unless changed.
struct Req {
    cloud: &'static str,
    image: Chosen,
    flavor: Chosen,
    network: Chosen,
    vcpus: u64,
    ram_mb: u64,
    count: u32,
    metadata: Map<String, Value>,
}

fn chosen(id: &str, name: &str) -> Chosen {
    Chosen { id: id.into(), name: name.into() }
}

fn req() -> Req {
    Req {
        cloud: "dev",
        image: chosen("img-1", "ubuntu-24.04"),
        flavor: chosen("2", "m1.small"),
        network: chosen("net-1", "private"),
        vcpus: 1,
        ram_mb: 2048,
        count: 1,
        metadata: Map::new(),
    }
}

fn route(p: &ApprovalPolicy, r: &Req) -> Route {
    p.route(&RequestFacts {
        cloud: r.cloud,
        image: &r.image,
        flavor: &r.flavor,
        vcpus: r.vcpus,
        ram_mb: r.ram_mb,
        network: &r.network,
        count: r.count,
        metadata: &r.metadata,
    })
}

fn people(list: &[&str]) -> Vec<String> {
    list.iter().map(|p| p.to_string()).collect()
}

#[test]
fn the_design_example_routes_small_large_and_other_requests() {
    let p = policy(DESIGN_EXAMPLE);
    assert_eq!(p.rule_names(), ["small-dev", "large", "default"]);

    let small = route(&p, &req());
    assert_eq!((small.rule.as_str(), small.auto_approve, small.stages.len()), ("small-dev", true, 0));

    let large = route(&p, &Req { vcpus: 8, ..req() });
    assert_eq!(large.rule, "large");
    assert!(!large.auto_approve);
    assert_eq!(
        large.stages,
        [
            StagePlan {
                group: "platform".into(),
                quorum: 1,
                members: people(&["ops1@example.com", "ops2@example.com", "ops3@example.com"]),
            },
            StagePlan {
                group: "security".into(),
                quorum: 2,
                members: people(&["sec1@example.com", "sec2@example.com", "sec3@example.com"]),
            },
        ]
    );

    for other in [Req { count: 2, ..req() }, Req { vcpus: 3, ..req() }, Req { cloud: "prod", ..req() }] {
        let r = route(&p, &other);
        assert_eq!(r.rule, "default");
        assert_eq!(r.stages.len(), 1);
        assert_eq!((r.stages[0].group.as_str(), r.stages[0].quorum), ("platform", 1));
    }
    assert_eq!(
        p.escalation(),
        Some(Escalation {
            after: SignedDuration::from_hours(24),
            group: "platform-leads".into(),
            members: people(&["lead1@example.com", "lead2@example.com"]),
        })
    );
}

const MATCHING: &str = "\
groups:
  ops: [ops@example.com]
rules:
  - name: by-flavor
    when: {flavor: [m1.large, 2]}
    auto_approve: true
  - name: by-image
    when: {image: img-9}
    auto_approve: true
  - name: by-network
    when: {network: [public]}
    auto_approve: true
  - name: by-metadata
    when:
      metadata: {tier: [gold, platinum], replicas: 3}
    auto_approve: true
  - name: by-ram
    when: {min_ram_mb: 4096, max_ram_mb: 8192, min_count: 2}
    auto_approve: true
  - name: rest
    stages: [{group: ops}]
";

#[test]
fn flavor_image_network_match_by_name_or_id_and_metadata_by_value() {
    let p = policy(MATCHING);
    let rule = |r: Req| route(&p, &r).rule;
    assert_eq!(rule(req()), "by-flavor", "flavor id \"2\" is named as the number 2");
    let other_flavor = || chosen("9", "m1.tiny");
    assert_eq!(rule(Req { flavor: chosen("f-7", "m1.large"), ..req() }), "by-flavor");
    assert_eq!(rule(Req { flavor: other_flavor(), image: chosen("img-9", "debian"), ..req() }), "by-image");
    assert_eq!(rule(Req { flavor: other_flavor(), network: chosen("net-2", "public"), ..req() }), "by-network");

    let with =
        |metadata: Value| Req { flavor: other_flavor(), metadata: metadata.as_object().unwrap().clone(), ..req() };
    assert_eq!(rule(with(json!({"tier": "gold", "replicas": 3}))), "by-metadata");
    assert_eq!(rule(with(json!({"tier": "platinum", "replicas": "3"}))), "by-metadata");
    assert_eq!(rule(with(json!({"tier": "silver", "replicas": 3}))), "rest");
    assert_eq!(rule(with(json!({"tier": "gold"}))), "rest", "every metadata key must be there");

    let sized = |ram_mb, count| Req { flavor: other_flavor(), ram_mb, count, ..req() };
    assert_eq!(rule(sized(4096, 2)), "by-ram");
    assert_eq!(rule(sized(8192, 5)), "by-ram");
    assert_eq!(rule(sized(8193, 2)), "rest");
    assert_eq!(rule(sized(4096, 1)), "rest");
    let rest = route(&p, &sized(1, 1));
    assert_eq!(rest.stages, [StagePlan { group: "ops".into(), quorum: 1, members: people(&["ops@example.com"]) }]);
}

#[test]
fn delegations_hold_from_start_to_end_inclusive_in_utc_days() {
    let p = policy(DESIGN_EXAMPLE);
    let on = |d: Date| {
        (p.delegates_of("ops1@example.com", d), p.delegation_active("OPS1@example.com", "ops3@example.com", d))
    };
    assert_eq!(on(date(2026, 12, 19)), (vec![], false));
    assert_eq!(on(date(2026, 12, 20)), (people(&["ops3@example.com"]), true));
    assert_eq!(on(date(2027, 1, 4)), (people(&["ops3@example.com"]), true));
    assert_eq!(on(date(2027, 1, 5)), (vec![], false));
    assert!(!p.delegation_active("ops1@example.com", "ops2@example.com", date(2026, 12, 25)));
    assert!(!p.delegation_active("ops3@example.com", "ops1@example.com", date(2026, 12, 25)));
    assert!(p.delegates_of("ops2@example.com", date(2026, 12, 25)).is_empty());
}

#[test]
fn groups_may_come_after_the_rules_that_name_them() {
    let yaml = "\
rules:
  - name: only
    stages: [{group: ops, quorum: 2}]
escalation: {after: 30m, group: leads}
groups:
  ops: [a@example.com, b@example.com]
  leads: [c@example.com]
";
    let p = policy(yaml);
    assert_eq!(route(&p, &req()).stages[0].members, people(&["a@example.com", "b@example.com"]));
    assert_eq!(p.escalation().unwrap().after, SignedDuration::from_mins(30));

    let e =
        assert_error(&yaml.replace("group: ops", "group: secrity"), 3, 14, "stage group \"secrity\" is not defined");
    assert!(e.message.ends_with("stage group \"secrity\" is not defined (groups: leads, ops)"), "{e}");
}

#[test]
fn a_stage_naming_an_unknown_group_is_refused_at_the_stage() {
    let yaml = DESIGN_EXAMPLE.replace("{group: security, quorum: 2}", "{group: secrity, quorum: 2}");
    let e = assert_error(&yaml, 13, 9, "stage group \"secrity\" is not defined");
    assert!(e.message.ends_with("(groups: platform, platform-leads, security)"), "{e}");
}

#[test]
fn a_quorum_above_the_group_size_or_zero_is_refused_at_the_stage() {
    let yaml = DESIGN_EXAMPLE.replace("{group: security, quorum: 2}", "{group: security, quorum: 4}");
    assert_error(&yaml, 13, 9, "the stage needs quorum 4 but group \"security\" has only 3 members");
    let yaml = DESIGN_EXAMPLE.replace("{group: security, quorum: 2}", "{group: security, quorum: 0}");
    assert_error(&yaml, 13, 9, "quorum must be at least 1");
}

#[test]
fn the_last_rule_must_match_every_request() {
    let yaml = DESIGN_EXAMPLE.replace("  - name: default\n", "  - name: default\n    when: {cloud: prod}\n");
    let e = assert_error(&yaml, 14, 5, "");
    assert!(
        e.message.ends_with(
            "the last rule, \"default\", has a `when`: add a rule without `when` at the end so every request has one"
        ),
        "{e}"
    );
    // A rule without `when` before others hides them.
    let yaml = DESIGN_EXAMPLE
        .replace("    when: {min_vcpus: 8}     # also: min_count, min_ram_mb, flavor, image, network, metadata\n", "");
    assert_error(&yaml, 9, 5, "rule \"large\" has no `when`, so it matches every request");
}

#[test]
fn unknown_keys_are_refused_at_the_key() {
    assert_error(&DESIGN_EXAMPLE.replace("max_count: 1", "max_cnt: 1"), 7, 40, "unknown field `max_cnt`");
    assert_error(
        &DESIGN_EXAMPLE.replace("    auto_approve: true\n", "    auto_approve: true\n    owner: me\n"),
        9,
        5,
        "unknown field `owner`",
    );
    assert_error(&DESIGN_EXAMPLE.replace("quorum: 2}", "quorum: 2, wait: 1}"), 13, 38, "unknown field `wait`");
    assert_error(&format!("{DESIGN_EXAMPLE}approvers: [x@example.com]\n"), 19, 1, "unknown field `approvers`");
}

#[test]
fn a_bad_member_address_is_refused_at_the_address() {
    let yaml = DESIGN_EXAMPLE.replace("sec2@example.com", "sec2 example.com");
    assert_error(&yaml, 3, 32, "\"sec2 example.com\" is not a valid e-mail address");
    let yaml = DESIGN_EXAMPLE.replace("ops3@example.com, start", "ops3, start");
    assert_error(&yaml, 17, 34, "\"ops3\" is not a valid e-mail address");
}

#[test]
fn the_same_person_twice_in_a_group_is_refused() {
    let yaml = DESIGN_EXAMPLE.replace("ops3@example.com]", "OPS1+vm@example.com]");
    assert_error(&yaml, 2, 50, "OPS1+vm@example.com is in group \"platform\" twice (as ops1@example.com");
}

#[test]
fn a_delegation_ending_before_it_starts_or_to_oneself_is_refused() {
    let yaml = DESIGN_EXAMPLE.replace("end: 2027-01-04", "end: 2026-12-19");
    assert_error(&yaml, 17, 5, "the delegation ends (2026-12-19) before it starts (2026-12-20)");
    let yaml = DESIGN_EXAMPLE.replace("to: ops3@example.com", "to: Ops1@example.com");
    assert_error(&yaml, 17, 5, "the delegation is from ops1@example.com to themselves");
    let yaml = DESIGN_EXAMPLE.replace("start: 2026-12-20", "start: 20.12.2026");
    assert_error(&yaml, 17, 59, "\"20.12.2026\" is not a date like 2026-12-20");
}

#[test]
fn rule_names_must_be_unique() {
    let yaml = DESIGN_EXAMPLE.replace("name: large", "name: small-dev");
    assert_error(&yaml, 9, 5, "rule name \"small-dev\" is used twice");
}

#[test]
fn a_rule_either_approves_by_itself_or_has_stages() {
    let both =
        DESIGN_EXAMPLE.replace("    auto_approve: true\n", "    auto_approve: true\n    stages: [{group: platform}]\n");
    assert_error(&both, 6, 5, "rule \"small-dev\" has both auto_approve: true and stages");
    let off = DESIGN_EXAMPLE.replace("auto_approve: true", "auto_approve: false");
    assert_error(&off, 6, 5, "rule \"small-dev\" has auto_approve: false and no stages");
    let neither = DESIGN_EXAMPLE.replace("    auto_approve: true\n", "");
    assert_error(&neither, 6, 5, "rule \"small-dev\" needs stages (who must approve) or auto_approve: true");
    let empty = DESIGN_EXAMPLE.replace("stages: [{group: platform, quorum: 1}]", "stages: []");
    assert_error(&empty, 15, 13, "stages is empty");
}

#[test]
fn a_rule_whose_stages_can_never_be_met_is_refused() {
    let yaml = DESIGN_EXAMPLE.replace(
        "{group: platform, quorum: 1}\n      - {group: security",
        "{group: security, quorum: 2}\n      - {group: security",
    );
    assert_error(
        &yaml,
        9,
        5,
        "rule \"large\" can never be approved: stages 1 (security) and 2 (security) need 4 approvals",
    );
}

#[test]
fn an_empty_group_is_refused() {
    let yaml = DESIGN_EXAMPLE.replace("[lead1@example.com, lead2@example.com]", "[]");
    assert_error(&yaml, 4, 19, "group \"platform-leads\" is empty");
}

#[test]
fn a_group_and_its_delegates_must_fit_one_write() {
    let members: Vec<String> = (1..=45).map(|i| format!("m{i}@example.com")).collect();
    let delegation = |i: usize| {
        format!("  - {{from: m{i}@example.com, to: d{i}@example.com, start: 2026-01-01, end: 2026-01-02}}\n")
    };
    let yaml = |delegations: usize| {
        format!(
            "rules:\n  - name: all\n    stages: [{{group: big}}]\ngroups:\n  big: [{}]\ndelegations:\n{}",
            members.join(", "),
            (1..=delegations).map(delegation).collect::<String>()
        )
    };
    policy(&yaml(2));
    let e = assert_error(&yaml(3), 5, 8, "group \"big\" has 45 members and 3 delegations from them: 48 people");
    assert!(e.message.contains("more than 47"), "{e}");
}

#[test]
fn bounds_escalation_and_the_top_level_are_checked() {
    assert_error(
        &DESIGN_EXAMPLE.replace("{min_vcpus: 8}", "{min_vcpus: 8, max_vcpus: 4}"),
        10,
        11,
        "min_vcpus (8) is above max_vcpus (4)",
    );
    assert_error(
        &DESIGN_EXAMPLE.replace("group: platform-leads}", "group: leads}"),
        18,
        13,
        "escalation group \"leads\" is not defined",
    );
    assert_error(&DESIGN_EXAMPLE.replace("after: 24h", "after: 0s"), 18, 21, "\"0s\" is not a duration like 24h");
    assert_error("groups:\n  ops: [a@example.com]\n", 1, 1, "missing field `rules`");
    assert_error("groups:\n  ops: [a@example.com]\nrules: []\n", 3, 8, "rules is empty");
    assert_eq!(ApprovalPolicy::parse("  \n").unwrap_err().to_string(), "approval policy: the policy is empty");
}

#[test]
fn the_change_policy_keeps_its_own_name_in_errors() {
    let e = crate::policy::ChangePolicy::parse("environments:\n  prod:\n    windws: []\n").unwrap_err();
    assert!(e.to_string().starts_with("change policy, line 3, column 5: "), "{e}");
}
