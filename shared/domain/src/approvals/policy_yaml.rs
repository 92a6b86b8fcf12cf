//! Reading the approval policy's YAML: every problem at its line and column, each cross-reference
//! checked where it is written.
//!
//! The file is read twice. The first pass reads only `groups` and `delegations` (and counts the
//! rules); the second reads everything knowing them, so that a stage or the escalation naming an
//! unknown group, a group whose members and their delegates are too many, or a last rule with a
//! `when` is refused at its own line, whatever the order of the top-level keys. serde's
//! `Deserialize` takes no arguments, so the second pass finds what the first learned in a
//! thread-local ([`Knowing`]), set for the duration of that one synchronous `serde_yaml` call and
//! restored when it returns (or unwinds). State local to one list (the names of earlier rules, a
//! group's earlier members) goes down as a `DeserializeSeed` instead.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use jiff::SignedDuration;
use jiff::civil::Date;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::policy::{ApprovalPolicy, Delegation, Escalation, MAX_STAGES, Rule, StagePlan, unreachable_quorum};
use super::policy_when::WhenEntry;
use crate::config::MAX_APPROVERS;
use crate::identity::same_person;
use crate::policy::PolicyError;
use crate::policy::yaml::{checked_map, parsed_str};

const DOCUMENT: &str = PolicyError::APPROVAL_POLICY;
const POLICY: &str = "an approval policy: a mapping with `groups`, `rules` and (optional) `delegations`, `escalation`";
/// Longest rule or group name, and longest metadata key.
const MAX_NAME_CHARS: usize = 100;

pub(super) fn parse(text: &str) -> Result<ApprovalPolicy, PolicyError> {
    if text.trim().is_empty() {
        return Err(PolicyError::unplaced(DOCUMENT, "the policy is empty"));
    }
    let known: Known = serde_yaml::from_str(text).map_err(|e| PolicyError::yaml(DOCUMENT, e))?;
    let _knowing = Knowing::set(known);
    let policy: PolicyEntry = serde_yaml::from_str(text).map_err(|e| PolicyError::yaml(DOCUMENT, e))?;
    Ok(policy.0)
}

/// What the first pass learns and the second checks against.
#[derive(Default)]
struct Known {
    groups: BTreeMap<String, Vec<String>>,
    delegations: Vec<Delegation>,
    /// How many rules there are, so that the last one can be told it must have no `when`.
    rules: usize,
}

thread_local! {
    static KNOWN: RefCell<Option<Rc<Known>>> = const { RefCell::new(None) };
}

/// Makes `Known` visible to the second pass until dropped; then restores what was there.
struct Knowing(Option<Rc<Known>>);

impl Knowing {
    fn set(known: Known) -> Knowing {
        Knowing(KNOWN.replace(Some(Rc::new(known))))
    }
}

impl Drop for Knowing {
    fn drop(&mut self) {
        KNOWN.set(self.0.take());
    }
}

/// What the first pass learned; `None` during the first pass itself.
fn known() -> Option<Rc<Known>> {
    KNOWN.with_borrow(Clone::clone)
}

/// The members of group `name`, or why it cannot be used (`what` says who names it).
fn defined_group(what: &str, name: &str) -> Result<Vec<String>, String> {
    let known = known().unwrap_or_default();
    known.groups.get(name).cloned().ok_or_else(|| {
        let names: Vec<&str> = known.groups.keys().map(String::as_str).collect();
        format!("{what} \"{name}\" is not defined (groups: {})", names.join(", "))
    })
}

impl<'de> Deserialize<'de> for Known {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Known;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(POLICY)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Known, A::Error> {
                let mut known = Known::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "groups" => known.groups = map.next_value::<Groups>()?.0,
                        "delegations" => {
                            known.delegations =
                                map.next_value::<Option<Delegations>>()?.map(|d| d.0).unwrap_or_default()
                        }
                        "rules" => {
                            known.rules = match map.next_value::<serde_yaml::Value>()? {
                                serde_yaml::Value::Sequence(rules) => rules.len(),
                                _ => 0,
                            }
                        }
                        // Refused by the second pass, at the key.
                        _ => {
                            let _: de::IgnoredAny = map.next_value()?;
                        }
                    }
                }
                Ok(known)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    groups: Groups,
    rules: Rules,
    #[serde(default)]
    delegations: Option<Delegations>,
    #[serde(default)]
    escalation: Option<EscalationEntry>,
}

struct PolicyEntry(ApprovalPolicy);

impl<'de> Deserialize<'de> for PolicyEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, POLICY, |raw: RawPolicy| {
            Ok(PolicyEntry(ApprovalPolicy {
                groups: raw.groups.0,
                rules: raw.rules.conditional,
                fallback: raw.rules.fallback,
                delegations: raw.delegations.map(|d| d.0).unwrap_or_default(),
                escalation: raw.escalation.map(|e| e.0),
            }))
        })
    }
}

/// A rule, group or metadata name: not empty, not too long, printable.
fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(format!("{what} is longer than {MAX_NAME_CHARS} characters"));
    }
    if value.chars().any(char::is_control) || crate::identity::check_visible_text(what, value).is_err() {
        return Err(format!("{what} {value:?} must be printable: no line breaks, control or invisible characters"));
    }
    Ok(())
}

/// A mapping key that must be a good name, refused (at the key) when seen before.
pub(super) struct NewKey<'a> {
    pub(super) what: &'static str,
    pub(super) seen: &'a dyn Fn(&str) -> bool,
}

impl<'de> DeserializeSeed<'de> for NewKey<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        struct V<'a>(NewKey<'a>);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a {}", self.0.what)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                check_name(self.0.what, v).map_err(E::custom)?;
                if (self.0.seen)(v) {
                    return Err(E::custom(format!("{} \"{v}\" is given twice", self.0.what)));
                }
                Ok(v.to_string())
            }
        }
        d.deserialize_str(V(self))
    }
}

/// An e-mail address as `crate::mail::check_email` accepts it.
fn email(value: &str) -> Result<String, String> {
    crate::mail::check_email("address", value).map(|()| value.to_string()).map_err(|e| match e {
        crate::Error::Invalid(problems) => {
            let why: Vec<String> = problems.into_iter().map(|p| p.message).collect();
            format!("\"{value}\" is not a valid e-mail address (it {})", why.join("; "))
        }
        other => format!("\"{value}\" is not a valid e-mail address ({other})"),
    })
}

struct Email(String);

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "an e-mail address", |s| email(s).map(Email))
    }
}

struct Groups(BTreeMap<String, Vec<String>>);

impl<'de> Deserialize<'de> for Groups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Groups;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of group names to lists of e-mail addresses")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Groups, A::Error> {
                let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
                loop {
                    let Some(name) = map.next_key_seed(NewKey { what: "group", seen: &|k| out.contains_key(k) })?
                    else {
                        break;
                    };
                    let members = map.next_value_seed(Members { group: &name })?;
                    out.insert(name, members);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("groups is empty: define the groups of approvers the rules ask"));
                }
                Ok(Groups(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A group's members: e-mail addresses, each person once; the list is refused (at the list) when
/// empty, or when its members and their delegates are more than one stage may ask.
struct Members<'a> {
    group: &'a str,
}

impl<'de> DeserializeSeed<'de> for Members<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Members<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the members of group \"{}\": a list of e-mail addresses", self.group)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut members: Vec<String> = Vec::new();
        loop {
            let Some(member) = seq.next_element_seed(NewMember { group: self.group, earlier: &members })? else {
                break;
            };
            members.push(member);
        }
        if members.is_empty() {
            return Err(de::Error::custom(format!(
                "group \"{}\" is empty: list its members' e-mail addresses",
                self.group
            )));
        }
        // Each delegation from a member may add a person to the stage's links and mails.
        let delegations = known().map_or(0, |known| {
            known.delegations.iter().filter(|d| members.iter().any(|m| same_person(m, &d.from))).count()
        });
        if members.len() + delegations > MAX_APPROVERS {
            return Err(de::Error::custom(format!(
                "group \"{}\" has {} members and {delegations} delegations from them: {} people a stage may ask, more \
                 than {MAX_APPROVERS}, so that a stage's approval links and mails fit one write of at most {} items \
                 (DynamoDB's limit per transaction)",
                self.group,
                members.len(),
                members.len() + delegations,
                crate::ports::MAX_WRITE_ITEMS
            )));
        }
        Ok(members)
    }
}

/// A member's address, refused (at the address) when it reaches someone listed before it.
struct NewMember<'a> {
    group: &'a str,
    earlier: &'a [String],
}

impl<'de> DeserializeSeed<'de> for NewMember<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NewMember<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an e-mail address")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        let address = email(v).map_err(E::custom)?;
        match self.earlier.iter().find(|e| same_person(e, &address)) {
            Some(e) if *e == address => Err(E::custom(format!("{address} is in group \"{}\" twice", self.group))),
            Some(e) => Err(E::custom(format!(
                "{address} is in group \"{}\" twice (as {e}: they reach the same mailbox)",
                self.group
            ))),
            None => Ok(address),
        }
    }
}

struct Rules {
    conditional: Vec<Rule>,
    fallback: Rule,
}

impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Rules;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of rules")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rules, A::Error> {
                let count = known().map_or(0, |k| k.rules);
                let mut rules: Vec<Rule> = Vec::new();
                loop {
                    let seed = RuleSeed { index: rules.len(), count, earlier: &rules };
                    let Some(rule) = seq.next_element_seed(seed)? else { break };
                    rules.push(rule);
                }
                let Some(fallback) = rules.pop() else {
                    return Err(de::Error::custom(
                        "rules is empty: add at least one rule, the last without `when`, so every request has one",
                    ));
                };
                if fallback.when.is_some() {
                    return Err(de::Error::custom(last_rule_has_when(&fallback.name)));
                }
                Ok(Rules { conditional: rules, fallback })
            }
        }
        d.deserialize_seq(V)
    }
}

fn last_rule_has_when(name: &str) -> String {
    format!("the last rule, \"{name}\", has a `when`: add a rule without `when` at the end so every request has one")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    when: Option<WhenEntry>,
    #[serde(default)]
    auto_approve: Option<bool>,
    #[serde(default)]
    stages: Option<Stages>,
}

/// Rule number `index` of `count`, after `earlier`.
struct RuleSeed<'a> {
    index: usize,
    count: usize,
    earlier: &'a [Rule],
}

impl<'de> DeserializeSeed<'de> for RuleSeed<'_> {
    type Value = Rule;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Rule, D::Error> {
        checked_map(d, "a rule {name, when, auto_approve or stages}", |raw: RawRule| self.check(raw))
    }
}

impl RuleSeed<'_> {
    fn check(&self, raw: RawRule) -> Result<Rule, String> {
        let name = raw.name;
        check_name("a rule's name", &name)?;
        if self.earlier.iter().any(|r| r.name == name) {
            return Err(format!("rule name \"{name}\" is used twice: each rule needs its own name"));
        }
        let last = self.index + 1 >= self.count;
        match (&raw.when, last) {
            (Some(_), true) => return Err(last_rule_has_when(&name)),
            (None, false) => {
                return Err(format!(
                    "rule \"{name}\" has no `when`, so it matches every request and the rules after it never \
                     apply: give it a `when` or make it the last rule"
                ));
            }
            _ => {}
        }
        let stages = match (raw.auto_approve, raw.stages) {
            (Some(true), None) => Vec::new(),
            (Some(true), Some(_)) => {
                return Err(format!(
                    "rule \"{name}\" has both auto_approve: true and stages: give it one or the other"
                ));
            }
            (Some(false), None) => {
                return Err(format!(
                    "rule \"{name}\" has auto_approve: false and no stages: give it stages (who must approve) or \
                     auto_approve: true"
                ));
            }
            (None, None) => {
                return Err(format!("rule \"{name}\" needs stages (who must approve) or auto_approve: true"));
            }
            (_, Some(stages)) => stages.0,
        };
        if let Some(reason) = unreachable_quorum(&stages, |_| false) {
            return Err(format!("rule \"{name}\" can never be approved: {reason}"));
        }
        Ok(Rule { name, when: raw.when.map(|w| w.0), auto_approve: stages.is_empty(), stages })
    }
}

struct Stages(Vec<StagePlan>);

impl<'de> Deserialize<'de> for Stages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Stages;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of stages {group, quorum}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stages, A::Error> {
                let mut stages = Vec::new();
                while let Some(stage) = seq.next_element::<StageEntry>()? {
                    stages.push(stage.0);
                }
                if stages.is_empty() {
                    return Err(de::Error::custom(
                        "stages is empty: list the groups who must approve, or use auto_approve: true",
                    ));
                }
                if stages.len() > MAX_STAGES {
                    return Err(de::Error::custom(format!(
                        "a rule has at most {MAX_STAGES} stages; this one has {}",
                        stages.len()
                    )));
                }
                Ok(Stages(stages))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    group: String,
    #[serde(default)]
    quorum: Option<u32>,
}

struct StageEntry(StagePlan);

impl<'de> Deserialize<'de> for StageEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "a stage {group, quorum}", |raw: RawStage| {
            let members = defined_group("stage group", &raw.group)?;
            let quorum = raw.quorum.unwrap_or(1);
            if quorum == 0 {
                return Err("a stage's quorum must be at least 1".to_string());
            }
            if quorum as usize > members.len() {
                return Err(format!(
                    "the stage needs quorum {quorum} but group \"{}\" has only {} member{}",
                    raw.group,
                    members.len(),
                    if members.len() == 1 { "" } else { "s" }
                ));
            }
            Ok(StageEntry(StagePlan { group: raw.group, quorum, members }))
        })
    }
}

struct Delegations(Vec<Delegation>);

impl<'de> Deserialize<'de> for Delegations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<DelegationEntry>::deserialize(d).map(|list| Delegations(list.into_iter().map(|e| e.0).collect()))
    }
}

/// A date as `2026-12-20`.
struct Day(Date);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a date like 2026-12-20", |s| {
            let s = s.trim();
            match s.parse::<Date>() {
                Ok(date) if s.len() == 10 => Ok(Day(date)),
                _ => Err(format!("\"{s}\" is not a date like 2026-12-20")),
            }
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelegation {
    from: Email,
    to: Email,
    start: Day,
    end: Day,
}

struct DelegationEntry(Delegation);

impl<'de> Deserialize<'de> for DelegationEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "a delegation {from, to, start, end}", |raw: RawDelegation| {
            let (from, to, start, end) = (raw.from.0, raw.to.0, raw.start.0, raw.end.0);
            if same_person(&from, &to) {
                return Err(format!("the delegation is from {from} to themselves: `to` must be someone else"));
            }
            if end < start {
                return Err(format!("the delegation ends ({end}) before it starts ({start})"));
            }
            Ok(DelegationEntry(Delegation { from, to, start, end }))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    after: After,
    group: String,
}

/// `escalation.after`: a duration like `24h` (as the lease settings read them), more than 0.
struct After(SignedDuration);

impl<'de> Deserialize<'de> for After {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed_str(d, "a duration like 24h", |s| {
            crate::config::duration(s)
                .and_then(|d| SignedDuration::try_from(d).ok())
                .map(After)
                .ok_or_else(|| format!("\"{s}\" is not a duration like 24h, 30m or 45s (above 0, at most 366d)"))
        })
    }
}

struct EscalationEntry(Escalation);

impl<'de> Deserialize<'de> for EscalationEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, "an escalation {after, group}", |raw: RawEscalation| {
            let members = defined_group("escalation group", &raw.group)?;
            Ok(EscalationEntry(Escalation { after: raw.after.0, group: raw.group, members }))
        })
    }
}
