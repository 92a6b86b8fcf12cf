//! The provisioning request and what is recorded about it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mail::MailNotice;

/// A request id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(String);

impl RequestId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }
    /// Accepts only what `generate` makes, so a path segment never reaches a store unchecked.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().filter(|u| u.hyphenated().to_string() == s).map(|_| Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    PendingApproval,
    Approved,
    Provisioning,
    Active,
    Denied,
    Expired,
    Cancelled,
    Failed,
    /// The lease ran out (or the servers were decommissioned): the servers are deleted.
    Retired,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::PendingApproval,
        Status::Approved,
        Status::Provisioning,
        Status::Active,
        Status::Denied,
        Status::Expired,
        Status::Cancelled,
        Status::Failed,
        Status::Retired,
    ];

    /// The state machine: every legal transition and nothing else.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (PendingApproval, Approved | Denied | Expired | Cancelled)
                // Cancelled: the request item was closed in ServiceNow before anything was created.
                | (Approved, Provisioning | Failed | Cancelled)
                | (Provisioning, Active | Failed)
                | (Active, Retired)
        )
    }

    pub fn is_final(self) -> bool {
        Status::ALL.iter().all(|to| !self.can_become(*to))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingApproval => "pending_approval",
            Status::Approved => "approved",
            Status::Provisioning => "provisioning",
            Status::Active => "active",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub system: String,
    pub number: String,
    pub sys_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub email: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// A catalog item as the request resolved it: the id PCD knows and the name a person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chosen {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub id: String,
    pub name: String,
    pub status: String,
    pub addresses: Vec<String>,
}

/// A request's lease on its servers (DESIGN.md "Leases"): when they are retired, what one
/// extension adds, and how far the reminders before it have got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// When the servers are deleted.
    pub retire_at: Timestamp,
    /// What one extension adds: `lease_days`, or the time first asked for with `retire_at`.
    pub length_secs: u64,
    /// How many times the requester extended it.
    #[serde(default)]
    pub extensions: u32,
    /// How many reminder offsets (largest first) were handled for this `retire_at`.
    #[serde(default)]
    pub reminders_sent: u32,
}

/// Who works on a `provisioning` request, and until when. Expired leases may be claimed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub status: Status,
    /// Bumped by every write; writes are conditional on it.
    pub version: u64,
    pub source: Source,
    /// Who the VMs are for (ServiceNow's `requested_for`).
    pub requester: Requester,
    /// Who opened the item, when someone ordered on another's behalf: they may not approve either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_by: Option<Requester>,
    pub cloud: String,
    pub image: Chosen,
    pub flavor: Chosen,
    pub network: Chosen,
    /// Set when the flavor has no disk: the size of the boot volume.
    pub boot_volume_gb: Option<u64>,
    pub server_name: String,
    pub count: u32,
    pub justification: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub approvers: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the approval links stop working.
    pub expires_at: Timestamp,
    /// When the sweeper next has something to do for this request (remind, expire, re-check,
    /// give up); `None` once the request is final.
    pub due_at: Option<Timestamp>,
    pub reminded: bool,
    /// Until when provisioning may take before it fails.
    pub deadline: Option<Timestamp>,
    pub lease: Option<Lease>,
    pub servers: Vec<ServerRecord>,
    pub error: Option<String>,
    /// The decision's comment, for the requester's mail.
    pub decision_comment: Option<String>,
    pub decided_by: Option<String>,
    /// How the decider proved who they were (a sign-in or "link only").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_proof: Option<String>,
    /// SHA-256 of the intake body's canonical JSON: a replay is the same body when this matches.
    pub intake_digest: String,
    /// The lease on the servers, when the request has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement: Option<Retirement>,
    /// Which approval rule routed the request and how far its stages got (absent on requests
    /// recorded before the approval policy: one stage of `approvers`, quorum 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approvals::Approval>,
    /// The head of the request's history chain (audit evidence).
    #[serde(default)]
    pub chain: crate::evidence::ChainHead,
}

impl Request {
    /// Moves to `to` if the state machine allows it, returning the history entry that records it.
    /// The caller writes both with `Store::apply`.
    pub fn transition(&mut self, to: Status, actor: &str, note: Option<String>, at: Timestamp) -> Result<HistoryEntry> {
        if !self.status.can_become(to) {
            return Err(Error::Conflict(format!("request is {}, it cannot become {to}", self.status)));
        }
        let from = self.status;
        self.status = to;
        self.touch(at);
        // Once the servers run, the provisioning claim is over; what is due next (the lease's
        // reminders and end) is set by whoever makes it active.
        if to.is_final() || to == Status::Active {
            self.due_at = None;
            self.lease = None;
        }
        Ok(HistoryEntry { at, actor: actor.to_string(), from: Some(from), to, note, proof: None, hash: None })
    }

    /// Whether `address` is this request's requester or whoever opened it (same mailbox after
    /// normalising): such a person may not decide it.
    pub fn is_requested_by(&self, address: &str) -> bool {
        crate::identity::same_person(address, &self.requester.email)
            || self.opened_by.as_ref().is_some_and(|o| crate::identity::same_person(address, &o.email))
    }

    /// What makes a request unique per source: one request per ServiceNow sys_id.
    pub fn source_key(&self) -> String {
        format!("{}#{}", self.source.system, self.source.sys_id)
    }

    /// Marks an in-place change (same status): new version and time.
    pub fn touch(&mut self, at: Timestamp) {
        self.version += 1;
        self.updated_at = at;
    }

    /// The names the servers get: `server_name`, or `server_name-1`… for count > 1.
    pub fn planned_names(&self) -> Vec<String> {
        if self.count <= 1 {
            vec![self.server_name.clone()]
        } else {
            (1..=self.count).map(|n| format!("{}-{n}", self.server_name)).collect()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub actor: String,
    pub from: Option<Status>,
    pub to: Status,
    pub note: Option<String>,
    /// How the actor proved who they are, for a decision: the sign-in (issuer, subject, amr) or
    /// "link only".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// HMAC-SHA256 (hex) chaining this entry to the one before (audit evidence); set by the store's
    /// sealing, absent on entries recorded before chaining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// The actor of the history entries that record a mail sent (audit evidence: to whom, which
/// template, the subject, when).
pub const MAIL_ACTOR: &str = "mail";

impl HistoryEntry {
    /// A mail that went out about a request in `status`: `mail <template> to <to>: <subject>`.
    pub fn mail_sent(at: Timestamp, status: Status, to: &str, template: &str, subject: &str) -> HistoryEntry {
        HistoryEntry::unchanged(at, MAIL_ACTOR, status, format!("mail {template} to {to}: {subject}"))
    }

    /// Whether the entry records a mail sent (not a step of the request itself).
    pub fn is_mail(&self) -> bool {
        self.actor == MAIL_ACTOR && self.from == Some(self.to)
    }

    /// An entry for a step that leaves the request in `status` (an approval counted in a stage, a
    /// stage passed or escalated).
    pub fn unchanged(at: Timestamp, actor: &str, status: Status, note: String) -> HistoryEntry {
        HistoryEntry {
            at,
            actor: actor.to_string(),
            from: Some(status),
            to: status,
            note: Some(note),
            proof: None,
            hash: None,
        }
    }
}

/// A write-back onto the ServiceNow request item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkNote {
    pub text: String,
    /// Set on the last note: close the item as complete (true) or incomplete (false).
    pub close: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageKind {
    Mail(MailNotice),
    WorkNote(WorkNote),
}

/// A message a transition owes (transactional outbox): recorded in the transition's write, delivered
/// afterwards by the sender, removed once delivered, retried while not, and kept as `dead` after
/// the last attempt allowed (until someone revives it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Sortable and unique: a UUIDv7.
    pub id: String,
    pub request_id: RequestId,
    pub created_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub kind: MessageKind,
    /// When the last attempt allowed failed: the message is dead, kept, and no longer retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_at: Option<Timestamp>,
}

/// Where an owed message stands. A sent message is removed from the store, so only these two are
/// ever read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Pending,
    Dead,
}

/// A sender's hold on one owed message while it delivers it: taken with a conditional write, so
/// one sender at a time holds a message; another may take it over once `until` has passed (the
/// holder crashed or timed out). Removing or updating the message is conditional on the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageClaim {
    /// Unique per claim.
    pub holder: String,
    pub until: Timestamp,
}

impl MessageClaim {
    /// A claim by a new holder id, lasting `lease` from `now`.
    pub fn new(now: Timestamp, lease: jiff::SignedDuration) -> Self {
        MessageClaim { holder: format!("sender-{}", uuid::Uuid::new_v4().simple()), until: now + lease }
    }
}

impl OutboxMessage {
    pub fn new(request_id: &RequestId, at: Timestamp, kind: MessageKind) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: request_id.clone(),
            created_at: at,
            next_attempt_at: at,
            attempts: 0,
            last_error: None,
            kind,
            dead_at: None,
        }
    }

    pub fn status(&self) -> MessageStatus {
        if self.dead_at.is_some() { MessageStatus::Dead } else { MessageStatus::Pending }
    }

    pub fn mail(request_id: &RequestId, at: Timestamp, notice: MailNotice) -> Self {
        Self::new(request_id, at, MessageKind::Mail(notice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_allows_exactly_the_designed_transitions() {
        use Status::*;
        let legal = [
            (PendingApproval, Approved),
            (PendingApproval, Denied),
            (PendingApproval, Expired),
            (PendingApproval, Cancelled),
            (Approved, Provisioning),
            (Approved, Failed),
            (Approved, Cancelled),
            (Provisioning, Active),
            (Provisioning, Failed),
            (Active, Retired),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(from.can_become(to), legal.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_states_are_the_ones_without_a_way_out() {
        use Status::*;
        let finals: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, vec![Denied, Expired, Cancelled, Failed, Retired]);
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::String(s.as_str().into()));
        }
        assert_eq!(Status::parse("Approved"), None);
    }

    #[test]
    fn request_ids_parse_only_what_generate_makes() {
        let id = RequestId::generate();
        assert_eq!(RequestId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(RequestId::parse(&id.as_str().to_uppercase()), None);
        assert_eq!(RequestId::parse("../etc/passwd"), None);
        assert_eq!(RequestId::parse(""), None);
    }
}
