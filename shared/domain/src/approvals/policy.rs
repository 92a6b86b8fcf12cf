//! The approval policy file (DESIGN.md "Approval policy"): who must approve which request.
//!
//! ```yaml
//! groups:
//!   platform: [ops1@example.com, ops2@example.com, ops3@example.com]
//!   security: [sec1@example.com, sec2@example.com, sec3@example.com]
//!   platform-leads: [lead1@example.com, lead2@example.com]
//! rules:                       # the first rule whose `when` matches decides
//!   - name: small-dev
//!     when: {cloud: [dev], max_vcpus: 2, max_count: 1}
//!     auto_approve: true
//!   - name: large
//!     when: {min_vcpus: 8}     # also: min_count, min_ram_mb, flavor, image, network, metadata
//!     stages:
//!       - {group: platform, quorum: 1}
//!       - {group: security, quorum: 2}
//!   - name: default
//!     stages: [{group: platform, quorum: 1}]
//! delegations:                 # the delegate may decide for the approver, dates inclusive
//!   - {from: ops1@example.com, to: ops3@example.com, start: 2026-12-20, end: 2027-01-04}
//! escalation: {after: 24h, group: platform-leads}
//! ```
//!
//! Reading the file ([`ApprovalPolicy::parse`], in `policy_yaml`) checks everything it can, each
//! problem at its line and column; this file holds what the policy decides once read.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use jiff::civil::Date;

use crate::identity::{mailbox, same_person};
use crate::model::Chosen;
use crate::policy::PolicyError;

/// Most stages a rule may have (and what [`unreachable_quorum`] checks exhaustively).
pub const MAX_STAGES: usize = 10;

/// A parsed, checked approval policy.
#[derive(Debug, Clone)]
pub struct ApprovalPolicy {
    pub(super) groups: BTreeMap<String, Vec<String>>,
    /// The rules with a `when`, in file order.
    pub(super) rules: Vec<Rule>,
    /// The last rule, which has no `when`: it decides every request the others do not match.
    pub(super) fallback: Rule,
    pub(super) delegations: Vec<Delegation>,
    pub(super) escalation: Option<Escalation>,
}

/// One rule: the requests it matches, and how they are approved.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) name: String,
    /// `None`: it matches every request.
    pub(super) when: Option<When>,
    pub(super) auto_approve: bool,
    /// Empty exactly when `auto_approve`; the members are the groups' as written in the file.
    pub(super) stages: Vec<StagePlan>,
}

/// A rule's `when`: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub(super) struct When {
    pub(super) cloud: Option<Names>,
    pub(super) flavor: Option<Names>,
    pub(super) image: Option<Names>,
    pub(super) network: Option<Names>,
    pub(super) vcpus: Bounds,
    pub(super) ram_mb: Bounds,
    pub(super) count: Bounds,
    /// Metadata key, and the values (as text) one of which it must have.
    pub(super) metadata: Vec<(String, Names)>,
}

/// A name or a list of names, matched exactly.
#[derive(Debug, Clone)]
pub(super) struct Names(pub(super) Vec<String>);

impl Names {
    fn contains(&self, value: &str) -> bool {
        self.0.iter().any(|n| n == value)
    }

    /// Whether the chosen catalog item is named, by its name or its id.
    fn names(&self, chosen: &Chosen) -> bool {
        self.contains(&chosen.name) || self.contains(&chosen.id)
    }
}

/// Inclusive bounds; either may be absent.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bounds {
    pub(super) min: Option<u64>,
    pub(super) max: Option<u64>,
}

impl Bounds {
    fn holds(&self, value: u64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

impl When {
    fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        self.cloud.as_ref().is_none_or(|n| n.contains(facts.cloud))
            && self.flavor.as_ref().is_none_or(|n| n.names(facts.flavor))
            && self.image.as_ref().is_none_or(|n| n.names(facts.image))
            && self.network.as_ref().is_none_or(|n| n.names(facts.network))
            && self.vcpus.holds(facts.vcpus)
            && self.ram_mb.holds(facts.ram_mb)
            && self.count.holds(u64::from(facts.count))
            && self.metadata.iter().all(|(key, values)| {
                facts.metadata.get(key).is_some_and(|value| match value {
                    serde_json::Value::String(text) => values.contains(text),
                    other => values.contains(&other.to_string()),
                })
            })
    }
}

/// Out of office: `to` may decide for `from` from `start` to `end`, both days included. Days are
/// UTC calendar days (a delegation ending 2027-01-04 holds until 2027-01-05T00:00Z), whatever the
/// people's own time zones, so every function agrees on whether one is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub from: String,
    pub to: String,
    pub start: Date,
    pub end: Date,
}

impl Delegation {
    /// Whether it holds on the UTC day `on`.
    pub fn active_on(&self, on: Date) -> bool {
        self.start <= on && on <= self.end
    }
}

/// A stage still open `after` this long also asks the members of `group`; they count toward its
/// quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub after: SignedDuration,
    pub group: String,
    pub members: Vec<String>,
}

/// What a rule's `when` looks at: the request as intake resolved it.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub cloud: &'a str,
    pub image: &'a Chosen,
    pub flavor: &'a Chosen,
    pub vcpus: u64,
    pub ram_mb: u64,
    pub network: &'a Chosen,
    pub count: u32,
    pub metadata: &'a serde_json::Map<String, serde_json::Value>,
}

/// How a request is approved: the rule that matched it, and its stages (none when it approves by
/// itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub rule: String,
    pub auto_approve: bool,
    pub stages: Vec<StagePlan>,
}

/// One stage as a rule gives it: the group asked, how many of them must approve, and who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    pub group: String,
    pub quorum: u32,
    pub members: Vec<String>,
}

impl Route {
    /// One stage of `members`, quorum 1: the route without a policy file.
    pub fn single(rule: &str, group: &str, members: Vec<String>) -> Route {
        Route {
            rule: rule.to_string(),
            auto_approve: false,
            stages: vec![StagePlan { group: group.to_string(), quorum: 1, members }],
        }
    }
}

impl ApprovalPolicy {
    /// Parses and checks the whole file; every problem at its line and column where known.
    pub fn parse(text: &str) -> Result<ApprovalPolicy, PolicyError> {
        super::policy_yaml::parse(text)
    }

    /// The first rule whose `when` matches (the last rule is a catch-all, checked at parse, so
    /// there is always one).
    pub fn route(&self, facts: &RequestFacts<'_>) -> Route {
        let rule = self
            .rules
            .iter()
            .find(|rule| rule.when.as_ref().is_none_or(|when| when.matches(facts)))
            .unwrap_or(&self.fallback);
        Route { rule: rule.name.clone(), auto_approve: rule.auto_approve, stages: rule.stages.clone() }
    }

    /// Members with an active delegation on `on` (UTC civil date, inclusive): the delegates of
    /// `member`, each once.
    pub fn delegates_of(&self, member: &str, on: Date) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in self.delegations.iter().filter(|d| d.active_on(on) && same_person(&d.from, member)) {
            if !out.iter().any(|o| same_person(o, &d.to)) {
                out.push(d.to.clone());
            }
        }
        out
    }

    /// Whether `delegate` may decide for `member` on `on` (UTC civil date, inclusive).
    pub fn delegation_active(&self, member: &str, delegate: &str, on: Date) -> bool {
        self.delegations.iter().any(|d| d.active_on(on) && same_person(&d.from, member) && same_person(&d.to, delegate))
    }

    pub fn escalation(&self) -> Option<Escalation> {
        self.escalation.clone()
    }

    /// The rules' names in order (for messages and the view).
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().chain(std::iter::once(&self.fallback)).map(|r| r.name.as_str()).collect()
    }

    /// The members of group `name`, as written in the file.
    pub fn group(&self, name: &str) -> Option<&[String]> {
        self.groups.get(name).map(Vec::as_slice)
    }

    /// Every delegation, in file order.
    pub fn delegations(&self) -> &[Delegation] {
        &self.delegations
    }
}

/// `None` when the stages can reach every quorum with distinct people, none of whom `cannot_count`
/// (the requester); else a sentence saying which stage (or stages) cannot, e.g. "stage 2
/// (security) needs 2 approvals but only 1 of its members may approve this request".
///
/// One person counts in one stage at most, so a set of stages needs, together, as many distinct
/// eligible people as the sum of their quorums. That is Hall's condition, checked for every subset
/// of stages (smallest first, so the sentence names the fewest stages): with at most
/// [`MAX_STAGES`] stages that is at most 1023 subsets. Beyond 16 stages (no policy gives that)
/// only single stages and all of them together are checked.
pub fn unreachable_quorum(stages: &[StagePlan], cannot_count: impl Fn(&str) -> bool) -> Option<String> {
    // Each eligible person once (by mailbox), and per stage the indices of its eligible people.
    let mut people: Vec<String> = Vec::new();
    let eligible: Vec<Vec<usize>> = stages
        .iter()
        .map(|stage| {
            let mut own: Vec<usize> = Vec::new();
            for member in stage.members.iter().filter(|m| !cannot_count(m)) {
                let key = mailbox(member);
                let index = people.iter().position(|p| *p == key).unwrap_or_else(|| {
                    people.push(key);
                    people.len() - 1
                });
                if !own.contains(&index) {
                    own.push(index);
                }
            }
            own
        })
        .collect();

    let n = stages.len();
    let subsets: Vec<Vec<usize>> = if n <= 16 {
        let mut masks: Vec<u32> = (1..(1u32 << n)).collect();
        masks.sort_by_key(|m| (m.count_ones(), *m));
        masks.iter().map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect()).collect()
    } else {
        (0..n).map(|i| vec![i]).chain(std::iter::once((0..n).collect())).collect()
    };
    let mut counted = vec![false; people.len()];
    for chosen in subsets {
        counted.iter_mut().for_each(|c| *c = false);
        let mut needed: u64 = 0;
        for &i in &chosen {
            needed += u64::from(stages[i].quorum);
            eligible[i].iter().for_each(|&p| counted[p] = true);
        }
        let available = counted.iter().filter(|c| **c).count() as u64;
        if available < needed {
            return Some(describe_shortfall(stages, &chosen, needed, available));
        }
    }
    None
}

fn describe_shortfall(stages: &[StagePlan], chosen: &[usize], needed: u64, available: u64) -> String {
    let name = |i: usize| format!("{} ({})", i + 1, stages[i].group);
    let approvals = |n: u64| if n == 1 { "1 approval".to_string() } else { format!("{n} approvals") };
    if let [only] = chosen {
        return format!(
            "stage {} needs {} but only {available} of its members may approve this request",
            name(*only),
            approvals(needed)
        );
    }
    let mut names: Vec<String> = chosen.iter().map(|&i| name(i)).collect();
    let last = names.pop().unwrap_or_default();
    format!(
        "stages {} and {last} need {} from different people (one person counts in one stage at most) but only \
         {available} of their members may approve this request",
        names.join(", "),
        approvals(needed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(group: &str, quorum: u32, members: &[&str]) -> StagePlan {
        StagePlan { group: group.into(), quorum, members: members.iter().map(|m| m.to_string()).collect() }
    }

    fn nobody(_: &str) -> bool {
        false
    }

    #[test]
    fn the_requester_alone_in_a_one_member_group_cannot_approve() {
        let stages = [stage("platform", 1, &["ops1@example.com"])];
        assert_eq!(unreachable_quorum(&stages, nobody), None);
        let reason = unreachable_quorum(&stages, |a| same_person(a, "OPS1+vm@example.com")).unwrap();
        assert_eq!(reason, "stage 1 (platform) needs 1 approval but only 0 of its members may approve this request");
    }

    #[test]
    fn a_stage_short_of_its_quorum_without_the_requester_is_named() {
        let stages =
            [stage("platform", 1, &["ops1@x.org", "ops2@x.org"]), stage("security", 2, &["s1@x.org", "s2@x.org"])];
        assert_eq!(unreachable_quorum(&stages, |a| a == "ops1@x.org"), None);
        let reason = unreachable_quorum(&stages, |a| a == "s2@x.org").unwrap();
        assert_eq!(reason, "stage 2 (security) needs 2 approvals but only 1 of its members may approve this request");
    }

    #[test]
    fn stages_sharing_members_fail_when_together_they_lack_distinct_people() {
        // Each stage alone can be met, but three approvals from two people cannot.
        let stages = [stage("a", 2, &["x@x.org", "y@x.org"]), stage("b", 1, &["x@x.org", "Y@X.org"])];
        let reason = unreachable_quorum(&stages, nobody).unwrap();
        assert_eq!(
            reason,
            "stages 1 (a) and 2 (b) need 3 approvals from different people (one person counts in one stage at most) \
             but only 2 of their members may approve this request"
        );
    }

    #[test]
    fn stages_sharing_members_pass_when_enough_distinct_people_exist() {
        let stages = [
            stage("a", 2, &["x@x.org", "y@x.org", "z@x.org"]),
            stage("b", 1, &["x@x.org", "y@x.org"]),
            stage("c", 1, &["w@x.org"]),
        ];
        assert_eq!(unreachable_quorum(&stages, nobody), None);
        // Without z, a and b need three of x and y.
        assert!(unreachable_quorum(&stages, |a| a == "z@x.org").unwrap().starts_with("stages 1 (a) and 2 (b) need 3"));
        assert_eq!(unreachable_quorum(&[], nobody), None);
    }

    #[test]
    fn the_smallest_failing_set_of_three_stages_is_named() {
        let stages = [
            stage("a", 1, &["x@x.org", "y@x.org"]),
            stage("b", 1, &["x@x.org", "y@x.org"]),
            stage("c", 1, &["x@x.org"]),
        ];
        let reason = unreachable_quorum(&stages, nobody).unwrap();
        assert!(reason.starts_with("stages 1 (a), 2 (b) and 3 (c) need 3 approvals"), "{reason}");
    }

    #[test]
    fn a_single_route_has_one_stage_of_quorum_one() {
        let route = Route::single("default", "approvers", vec!["a@x.org".into()]);
        assert_eq!(route.rule, "default");
        assert!(!route.auto_approve);
        assert_eq!(route.stages, vec![stage("approvers", 1, &["a@x.org"])]);
    }
}
