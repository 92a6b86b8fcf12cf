//! Intake: ServiceNow hands over an approved catalog request. Validated against the live catalog,
//! recorded once per sys_id with its approval tokens and the mails it owes.

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Services;
use super::source::SourcePeople;
use super::stages::names;
use crate::approvals::policy::{RequestFacts, unreachable_quorum};
use crate::approvals::{Approval, Stage};
use crate::catalog::{CloudOptions, Flavor};
use crate::compute::{Footprint, Resource};
use crate::error::{Error, FieldError, Result};
use crate::identity::{check_visible_json, check_visible_text, same_person};
use crate::mail::{MailNotice, MailTemplate, check_email, check_header_text};
use crate::model::{Chosen, HistoryEntry, OutboxMessage, Request, RequestId, Requester, Source, Status};
use crate::ports::Created;
use crate::token::hex;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    pub system: String,
    pub number: String,
    pub sys_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequesterBody {
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub user_name: Option<String>,
}

fn person(p: &RequesterBody) -> Requester {
    Requester { email: p.email.clone(), name: p.name.clone(), user_name: p.user_name.clone() }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeBody {
    pub source: SourceBody,
    pub requester: RequesterBody,
    /// Who opened the item, when not the requester (ServiceNow's is used when it is configured).
    #[serde(default)]
    pub opened_by: Option<RequesterBody>,
    pub cloud: String,
    pub image: String,
    pub flavor: String,
    pub network: String,
    pub server_name: String,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub justification: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The lease in days (1 to `GATEHOUSE_MAX_LEASE_DAYS`); or
    #[serde(default)]
    pub lease_days: Option<u32>,
    /// the time the servers are retired (RFC 3339).
    #[serde(default)]
    pub retire_at: Option<String>,
}

#[derive(Debug)]
pub enum IntakeOutcome {
    Created(Request),
    /// The same body for the same sys_id again: the first request, nothing new sent.
    Replayed(Request),
}

/// JSON with object keys sorted, so equal documents hash equal whatever their key order.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<_> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&map[*k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// RFC 1123 label: 1–63 of a–z, 0–9 and '-', not starting or ending with '-'.
pub fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn collect(errors: &mut Vec<FieldError>, result: Result<()>) {
    if let Err(Error::Invalid(mut e)) = result {
        errors.append(&mut e);
    }
}

fn check_plain_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else {
        collect(errors, check_header_text(field, value, max).and_then(|()| check_visible_text(field, value)));
    }
}

fn check_person(errors: &mut Vec<FieldError>, field: &str, person: &RequesterBody) {
    collect(errors, check_email(&format!("{field}.email"), &person.email));
    collect(errors, check_visible_text(&format!("{field}.email"), &person.email));
    check_plain_text(errors, &format!("{field}.name"), &person.name, 200);
    if let Some(u) = &person.user_name {
        check_plain_text(errors, &format!("{field}.user_name"), u, 100);
    }
}

/// Checks everything that needs no outside system, collecting every problem.
fn check_shape(body: &IntakeBody, max_count: u32) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if body.source.system != "servicenow" {
        errors.push(FieldError::new("source.system", "must be \"servicenow\""));
    }
    check_plain_text(&mut errors, "source.number", &body.source.number, 40);
    if body.source.sys_id.len() != 32 || !body.source.sys_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        errors.push(FieldError::new("source.sys_id", "must be a ServiceNow sys_id: 32 hexadecimal characters"));
    }
    check_person(&mut errors, "requester", &body.requester);
    if let Some(opened_by) = &body.opened_by {
        check_person(&mut errors, "opened_by", opened_by);
    }
    for (field, value) in
        [("cloud", &body.cloud), ("image", &body.image), ("flavor", &body.flavor), ("network", &body.network)]
    {
        check_plain_text(&mut errors, field, value, 255);
    }
    if !(1..=max_count).contains(&body.count) {
        errors.push(FieldError::new("count", format!("must be from 1 to {max_count}")));
    }
    let longest =
        if body.count > 1 { format!("{}-{}", body.server_name, body.count) } else { body.server_name.clone() };
    if !is_dns_label(&body.server_name) {
        errors.push(FieldError::new(
            "server_name",
            "must be an RFC 1123 label: 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'",
        ));
    } else if longest.len() > 63 {
        errors.push(FieldError::new(
            "server_name",
            format!("with count {} the name {longest} is longer than 63", body.count),
        ));
    }
    if let Some(j) = &body.justification {
        if j.chars().count() > 4000 {
            errors.push(FieldError::new("justification", "must be at most 4000 characters"));
        }
        if j.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            errors.push(FieldError::new("justification", "must not contain control characters"));
        }
        collect(&mut errors, check_visible_text("justification", j));
    }
    if body.metadata.len() > 50 {
        errors.push(FieldError::new("metadata", "must have at most 50 keys"));
    }
    for key in body.metadata.keys() {
        if key.is_empty() || key.len() > 100 || key.chars().any(|c| c.is_control()) {
            errors.push(FieldError::new(format!("metadata.{key}"), "keys must be 1 to 100 printable characters"));
        }
    }
    collect(&mut errors, check_visible_json("metadata", &Value::Object(body.metadata.clone())));
    errors
}

impl Services {
    /// The lease asked for, within the limits of `cloud` (clouds.yaml may narrow the global ones);
    /// a refusal only the cloud's own limits cause says so.
    fn lease_on(
        &self,
        cloud: &str,
        lease_days: Option<u32>,
        retire_at: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<crate::model::Retirement>> {
        let leases = &self.config.leases;
        let settings = leases.for_cloud(cloud);
        super::lease::lease_at_intake(&settings, lease_days, retire_at, now).map_err(|e| match e {
            Error::Invalid(mut errors)
                if leases.narrowed_on(cloud)
                    && super::lease::lease_at_intake(leases, lease_days, retire_at, now).is_ok() =>
            {
                for e in &mut errors {
                    e.message = format!("{} (the limit on cloud {cloud})", e.message);
                }
                Error::Invalid(errors)
            }
            other => other,
        })
    }

    pub async fn intake(&self, mut body: IntakeBody, raw: &Value) -> Result<IntakeOutcome> {
        // ServiceNow's sys_ids are compared lower-case everywhere, replays included.
        body.source.sys_id = body.source.sys_id.to_ascii_lowercase();
        let mut raw = raw.clone();
        if let Some(sys_id) = raw.pointer_mut("/source/sys_id") {
            *sys_id = Value::String(body.source.sys_id.clone());
        }
        let errors = check_shape(&body, self.config.max_count);
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let digest = hex(&Sha256::digest(canonical_json(&raw).as_bytes()));
        let source_key = format!("{}#{}", body.source.system, body.source.sys_id);
        if let Some(existing) = self.store.find_by_source(&source_key).await? {
            return replay(existing, &digest);
        }

        let people = match self.people_at_source(&body).await? {
            Some(people) => people,
            None => SourcePeople { requester: person(&body.requester), opened_by: body.opened_by.as_ref().map(person) },
        };

        if !self.catalog.clouds().iter().any(|c| c.name == body.cloud) {
            return Err(Error::invalid("cloud", format!("\"{}\" is not a configured cloud", body.cloud)));
        }
        let options = self.catalog.options(&body.cloud).await?;
        let mut errors = Vec::new();
        let image = options.image(&body.image).map_err(|m| errors.push(FieldError::new("image", m))).ok();
        let flavor = options.flavor(&body.flavor).map_err(|m| errors.push(FieldError::new("flavor", m))).ok();
        let network = options.network(&body.network).map_err(|m| errors.push(FieldError::new("network", m))).ok();
        let (Some(image), Some(flavor), Some(network)) = (image, flavor, network) else {
            return Err(Error::Invalid(errors));
        };

        let now = Timestamp::now();
        let retirement = self.lease_on(&body.cloud, body.lease_days, body.retire_at.as_deref(), now)?;
        let ttl = SignedDuration::try_from(self.config.approval_ttl).map_err(|e| Error::internal("approval ttl", e))?;
        let boot_volume_gb = (flavor.disk_gb == 0).then_some(self.config.boot_volume_gb.max(image.min_disk_gb));
        let image = Chosen { id: image.id.clone(), name: image.name.clone() };
        let chosen_flavor = Chosen { id: flavor.id.clone(), name: flavor.name.clone() };
        let network = Chosen { id: network.id.clone(), name: network.name.clone() };
        let route = self.route(&RequestFacts {
            cloud: &body.cloud,
            image: &image,
            flavor: &chosen_flavor,
            vcpus: flavor.vcpus,
            ram_mb: flavor.ram_mb,
            network: &network,
            count: body.count,
            metadata: &body.metadata,
        });
        let is_asker = |a: &str| {
            same_person(a, &people.requester.email)
                || people.opened_by.as_ref().is_some_and(|o| same_person(a, &o.email))
        };
        if !route.auto_approve
            && let Some(reason) = unreachable_quorum(&route.stages, is_asker)
        {
            return Err(Error::invalid(
                "requester.email",
                format!(
                    "approval rule \"{}\" cannot be met without the people who asked for this request: {reason}",
                    route.rule
                ),
            ));
        }
        self.check_quota(&body.cloud, &options, flavor, body.count).await?;
        let mut approvers: Vec<String> = Vec::new();
        for member in route.stages.iter().flat_map(|s| &s.members) {
            if !approvers.iter().any(|a| same_person(a, member)) {
                approvers.push(member.clone());
            }
        }
        let approval = Approval {
            rule: route.rule.clone(),
            auto_approved: route.auto_approve,
            stages: route.stages.iter().map(|s| Stage::waiting(s.group.clone(), s.quorum, s.members.clone())).collect(),
        };
        let mut request = Request {
            id: RequestId::generate(),
            status: Status::PendingApproval,
            version: 1,
            source: Source { system: body.source.system, number: body.source.number, sys_id: body.source.sys_id },
            requester: people.requester,
            opened_by: people.opened_by,
            cloud: body.cloud,
            image,
            flavor: chosen_flavor,
            network,
            boot_volume_gb,
            server_name: body.server_name,
            count: body.count,
            justification: body.justification.filter(|j| !j.trim().is_empty()),
            metadata: body.metadata,
            approvers,
            created_at: now,
            updated_at: now,
            expires_at: now + ttl,
            // First thing the sweeper owes: the reminder at half time.
            due_at: Some(now + ttl / 2),
            reminded: false,
            deadline: None,
            lease: None,
            servers: vec![],
            error: None,
            decision_comment: None,
            decided_by: None,
            decision_proof: None,
            intake_digest: digest.clone(),
            retirement,
            approval: Some(approval),
            chain: Default::default(),
        };
        if route.auto_approve {
            return self.auto_approve(request, now, &digest).await;
        }
        let mut approval = request.approval.take().unwrap_or_else(|| Approval::single("default", "approvers", vec![]));
        approval.open(0, now);
        let invites = self.invites(&request, &approval, &approval.stages[0].members, now);
        let asked = if !approval.is_staged() {
            String::new()
        } else {
            format!(" for {} of rule {}", approval.describe(0), approval.rule)
        };
        request.approval = Some(approval);
        request.due_at = Some(self.pending_due(&request));
        let (tokens, links) = self.stage_links(&request, 0, &invites, now, false, false);
        let mut messages = vec![OutboxMessage::mail(
            &request.id,
            now,
            MailNotice { to: request.requester.email.clone(), template: MailTemplate::Received },
        )];
        messages.extend(links);
        messages.extend(self.work_note(
            &request,
            now,
            format!(
                "Gatehouse received this request as {} and asked {}{asked} to approve it by {}.",
                request.id,
                names(&invites),
                request.expires_at.strftime("%Y-%m-%d %H:%M UTC")
            ),
            None,
        ));
        let history = HistoryEntry {
            at: now,
            actor: intake_actor(&request),
            from: None,
            to: Status::PendingApproval,
            note: Some(format!("received {}; approval asked of {}{asked}", request.source.number, names(&invites))),
            proof: None,
            hash: None,
        };
        match self.store.create(request, history, tokens, messages).await? {
            Created::New(request) => {
                self.signals.messages_owed();
                tracing::info!(request = %request.id, number = %request.source.number, "request received");
                Ok(IntakeOutcome::Created(request))
            }
            Created::Existing(existing) => replay(existing, &digest),
        }
    }
}

/// Who hands requests over, for the history: ServiceNow, on behalf of the requester.
fn intake_actor(request: &Request) -> String {
    format!("servicenow ({})", request.requester.user_name.as_deref().unwrap_or(&request.requester.email))
}

impl Services {
    /// A request its rule approves by itself: recorded `approved` in the same write that creates
    /// it (actor `policy:<rule>`), the requester mailed, the item noted, provisioning started. No
    /// approver is asked.
    async fn auto_approve(&self, mut request: Request, now: Timestamp, digest: &str) -> Result<IntakeOutcome> {
        let rule = request.approval.as_ref().map(|a| a.rule.clone()).unwrap_or_default();
        let actor = format!("policy:{rule}");
        request.status = Status::Approved;
        request.decided_by = Some(actor.clone());
        request.decision_proof = Some(format!("approval policy rule {rule}"));
        request.due_at = Some(now);
        let mut messages = vec![OutboxMessage::mail(
            &request.id,
            now,
            MailNotice { to: request.requester.email.clone(), template: MailTemplate::Approved },
        )];
        let text = format!(
            "Gatehouse received this request as {} and approved it automatically: rule {rule} of the approval policy \
             needs no approver for it.",
            request.id
        );
        messages.extend(self.work_note(&request, now, text, None));
        let history = HistoryEntry {
            at: now,
            actor,
            from: None,
            to: Status::Approved,
            note: Some(format!(
                "received {} from {}; approved by rule {rule} of the approval policy",
                request.source.number,
                intake_actor(&request)
            )),
            proof: None,
            hash: None,
        };
        match self.store.create(request, history, vec![], messages).await? {
            Created::New(request) => {
                self.signals.messages_owed();
                crate::metrics::count(crate::metrics::Counter::Decisions, "approved");
                self.catalog.limits().forget(&request.cloud);
                self.signals.approved(&request.id);
                tracing::info!(request = %request.id, %rule, "request approved by the policy");
                Ok(IntakeOutcome::Created(request))
            }
            Created::Existing(existing) => replay(existing, digest),
        }
    }
}

/// How many requests of a cloud the quota check looks at, per status.
const HELD_SCAN: usize = 1000;

impl Services {
    /// What the approved requests of `cloud` that are not fully built yet will take: the servers
    /// they have still to create, at their flavor's size as the catalog lists it now. Counted
    /// again at most every `compute::LIMITS_TTL`, like the limits it is set against.
    ///
    /// Requests still pending approval are not counted (DESIGN.md: "counts what approved-but-
    /// unbuilt requests of that cloud will take"): one that is denied or expires would otherwise
    /// block others for as long as it waits, and the check before create catches two approvals
    /// racing for the last room.
    async fn held_for_approved(&self, cloud: &str, options: &CloudOptions) -> Result<Footprint> {
        if let Some(counted) = self.catalog.limits().held(cloud) {
            return Ok(counted);
        }
        let mut held = Footprint::default();
        for status in [Status::Approved, Status::Provisioning] {
            let requests = self.store.due(status, Timestamp::MAX, HELD_SCAN).await?;
            if requests.len() >= HELD_SCAN {
                tracing::warn!(%status, "more requests than the quota check looks at; the count may be low");
            }
            for r in requests.iter().filter(|r| r.cloud == cloud) {
                let unbuilt = u64::from(r.count).saturating_sub(r.servers.len() as u64);
                // A flavor gone from the catalog still takes its instances; its size is unknown.
                let (vcpus, ram) = options.flavor(&r.flavor.id).map(|f| (f.vcpus, f.ram_mb)).unwrap_or((0, 0));
                held = held.plus(Footprint::of(unbuilt, vcpus, ram));
            }
        }
        self.catalog.limits().keep_held(cloud, held);
        Ok(held)
    }

    /// Refuses (422) a request the project's quota cannot hold next to the approved requests not
    /// yet built: on `flavor` when not even one server of it fits in what is left of vCPUs or RAM,
    /// else on `count`, with the numbers.
    async fn check_quota(&self, cloud: &str, options: &CloudOptions, flavor: &Flavor, count: u32) -> Result<()> {
        let (limits, held) = futures::try_join!(
            self.catalog.limits().limits(self.catalog.cloud().as_ref(), cloud),
            self.held_for_approved(cloud, options)
        )?;
        let one = Footprint::of(1, flavor.vcpus, flavor.ram_mb);
        let shortfalls = limits.shortfalls(held, Footprint::of(u64::from(count), flavor.vcpus, flavor.ram_mb));
        if shortfalls.is_empty() {
            return Ok(());
        }
        let fit = limits.how_many_fit(held, one).unwrap_or(u64::MAX);
        let errors = shortfalls
            .iter()
            .map(|s| {
                let per_server = match s.resource {
                    Resource::Cores => one.cores,
                    Resource::Ram => one.ram_mb,
                    Resource::Instances => 1,
                };
                let mut message = format!("the quota of cloud {cloud} cannot hold it: {}", s.explain());
                if s.resource != Resource::Instances && per_server > s.left() {
                    return FieldError::new("flavor", format!("{message}; not one server of {} fits", flavor.name));
                }
                if fit > 0 && fit < u64::from(count) {
                    message.push_str(&format!("; at most {fit} of {} fit", flavor.name));
                }
                FieldError::new("count", message)
            })
            .collect();
        tracing::info!(%cloud, flavor = %flavor.name, count, "intake refused for quota");
        Err(Error::Invalid(errors))
    }
}

fn replay(existing: Request, digest: &str) -> Result<IntakeOutcome> {
    if existing.intake_digest == digest {
        Ok(IntakeOutcome::Replayed(existing))
    } else {
        Err(Error::Conflict(format!(
            "source.sys_id was already submitted with a different body as request {}",
            existing.id
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"q":2,"p":1}], "x": null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"p":1,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        let c: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[{"p":1,"q":2},1]},"b":1}"#).unwrap();
        assert_ne!(canonical_json(&a), canonical_json(&c), "array order matters");
    }

    #[test]
    fn dns_labels() {
        for ok in ["web-01", "a", "x1", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-web", "web-", "Web", "web_01", "web.01", &"a".repeat(64), "wéb"] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
