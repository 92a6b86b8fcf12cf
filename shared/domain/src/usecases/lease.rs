//! Leases on servers (DESIGN.md "Provisioning", Leases): the term a request asks for at intake,
//! the reminders before it ends with an Extend link, and the extension that link makes. The end
//! itself (deleting the servers) is in `retire.rs`.
//!
//! An Extend link is scanner-safe like an approval link: looking never acts, only the page's
//! POST extends. Its token is derived from the link key and a random link id when the reminder is
//! rendered, and stored only as a hash of its own kind (`ApprovalToken::lease_hash`), so it never
//! opens an approval page. One link extends once; `GATEHOUSE_MAX_EXTENSIONS` bounds them all.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::Services;
use crate::compute::RETIRE_AT_METADATA_KEY;
use crate::config::LeaseSettings;
use crate::error::{Error, Result};
use crate::mail::{MailNotice, MailTemplate};
use crate::model::{HistoryEntry, OutboxMessage, Request, RequestId, Retirement, Status};
use crate::ports::Write;
use crate::token::{ApprovalToken, TokenRecord};

const DAY_SECS: u64 = 86_400;

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// How many of the reminder offsets (largest first) lie at or before `now` for a lease ending at
/// `retire_at`: those are handled (mailed, or skipped because the lease began after them).
fn offsets_passed(reminders: &[Duration], retire_at: Timestamp, now: Timestamp) -> u32 {
    reminders.iter().filter(|o| retire_at - signed(**o) <= now).count() as u32
}

/// When the sweeper next has something to do for an active request with this lease: the next
/// reminder, or the end.
pub fn next_due(lease: &Retirement, reminders: &[Duration]) -> Timestamp {
    reminders
        .get(lease.reminders_sent as usize)
        .map(|o| lease.retire_at - signed(*o))
        .map_or(lease.retire_at, |t| t.min(lease.retire_at))
}

/// The lease a new request asks for: `lease_days` (1 to the maximum) or an explicit `retire_at`
/// (RFC 3339, at least the minimum ahead and at most the maximum), or the default, or none.
/// Reminder offsets longer than the lease itself are counted as handled: they would fire at once.
pub fn lease_at_intake(
    settings: &LeaseSettings,
    lease_days: Option<u32>,
    retire_at: Option<&str>,
    now: Timestamp,
) -> Result<Option<Retirement>> {
    let max = now + SignedDuration::from_secs(i64::from(settings.max_days) * DAY_SECS as i64);
    let (retire_at, length_secs) = match (lease_days, retire_at) {
        (Some(_), Some(_)) => return Err(Error::invalid("retire_at", "give lease_days or retire_at, not both")),
        (Some(days), None) => {
            if !(1..=settings.max_days).contains(&days) {
                return Err(Error::invalid("lease_days", format!("must be from 1 to {}", settings.max_days)));
            }
            (now + SignedDuration::from_secs(i64::from(days) * DAY_SECS as i64), u64::from(days) * DAY_SECS)
        }
        (None, Some(text)) => {
            let at: Timestamp = text.parse().map_err(|_| {
                Error::invalid("retire_at", "must be an RFC 3339 time with an offset, like 2026-12-01T18:00:00Z")
            })?;
            let min = settings.min;
            if at < now + signed(min) {
                return Err(Error::invalid(
                    "retire_at",
                    format!(
                        "must be at least {} s ahead (it is {} s ahead)",
                        min.as_secs(),
                        at.duration_since(now).as_secs().max(0)
                    ),
                ));
            }
            if at > max {
                return Err(Error::invalid("retire_at", format!("must be at most {} days ahead", settings.max_days)));
            }
            // Whole seconds, rounded up: what was asked for, not a fraction short of it.
            (at, at.duration_since(now).as_secs_f64().ceil().max(1.0) as u64)
        }
        (None, None) => match settings.default_days {
            Some(days) => {
                (now + SignedDuration::from_secs(i64::from(days) * DAY_SECS as i64), u64::from(days) * DAY_SECS)
            }
            None => return Ok(None),
        },
    };
    let reminders_sent = offsets_passed(&settings.reminders, retire_at, now);
    Ok(Some(Retirement { retire_at, length_secs, extensions: 0, reminders_sent }))
}

/// Where an Extend link stands, for its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseLinkState {
    /// The lease may be extended with this link.
    Open,
    /// This link extended the lease already (or a later one did and this one is spent).
    Used,
    /// Extended as often as allowed without approval: `ask` says who may grant more.
    LimitReached { ask: Vec<String> },
    /// The servers are gone (or never ran): nothing to extend.
    Ended,
}

#[derive(Debug, Clone)]
pub struct LeaseView {
    pub request: Request,
    pub state: LeaseLinkState,
    /// What one extension adds.
    pub extends_by: SignedDuration,
    pub max_extensions: u32,
}

#[derive(Debug, Clone)]
pub enum ExtendOutcome {
    Extended(LeaseView),
    Refused(LeaseView),
}

impl Services {
    async fn lease_link(&self, token: &str) -> Result<(ApprovalToken, TokenRecord, Request)> {
        let not_found = || Error::NotFound("lease link".into());
        let token = ApprovalToken::parse(token).ok_or_else(not_found)?;
        let record = self.store.token(&token.lease_hash()).await?.ok_or_else(not_found)?;
        let request = self.store.get(&record.request_id).await?.ok_or_else(not_found)?;
        Ok((token, record, request))
    }

    fn lease_view(&self, request: Request, used: bool) -> LeaseView {
        let settings = &self.config.leases;
        let lease = request.retirement.clone();
        let state = match &lease {
            _ if request.status != Status::Active => LeaseLinkState::Ended,
            None => LeaseLinkState::Ended,
            Some(_) if used => LeaseLinkState::Used,
            Some(l) if l.extensions >= settings.max_extensions => {
                LeaseLinkState::LimitReached { ask: self.config.approvers.for_cloud(&request.cloud).to_vec() }
            }
            Some(_) => LeaseLinkState::Open,
        };
        let extends_by = SignedDuration::from_secs(lease.map_or(0, |l| l.length_secs) as i64);
        LeaseView { request, state, extends_by, max_extensions: settings.max_extensions }
    }

    /// What the Extend link's page shows. Changes nothing.
    pub async fn view_lease(&self, token: &str) -> Result<LeaseView> {
        let (_, record, request) = self.lease_link(token).await?;
        Ok(self.lease_view(request, record.used_at.is_some()))
    }

    /// Extends the lease by its length once per link, up to `GATEHOUSE_MAX_EXTENSIONS` in all and
    /// never past the longest lease from now. The extension, the link's use and the history entry
    /// are one conditional write: two clicks extend once.
    pub async fn extend_lease(&self, token: &str) -> Result<ExtendOutcome> {
        for _ in 0..8 {
            let (token, record, mut request) = self.lease_link(token).await?;
            let view = self.lease_view(request.clone(), record.used_at.is_some());
            if view.state != LeaseLinkState::Open {
                return Ok(ExtendOutcome::Refused(view));
            }
            let Some(mut lease) = request.retirement.clone() else { return Ok(ExtendOutcome::Refused(view)) };
            let now = Timestamp::now();
            // The cloud's own longest lease, when clouds.yaml narrows it.
            let settings = &self.config.leases.for_cloud(&request.cloud);
            let longest = now + SignedDuration::from_secs(i64::from(settings.max_days) * DAY_SECS as i64);
            let before = lease.retire_at;
            lease.retire_at = (lease.retire_at + SignedDuration::from_secs(lease.length_secs as i64)).min(longest);
            lease.extensions += 1;
            lease.reminders_sent = offsets_passed(&settings.reminders, lease.retire_at, now);
            let expected = request.version;
            request.due_at = Some(next_due(&lease, &settings.reminders));
            request.retirement = Some(lease.clone());
            request.touch(now);
            let when = lease.retire_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
            let note = format!(
                "lease extended from {} to {when} (extension {} of {})",
                before.strftime("%Y-%m-%d %H:%M:%S UTC"),
                lease.extensions,
                settings.max_extensions
            );
            let history = HistoryEntry {
                at: now,
                actor: record.approver.clone(),
                from: Some(Status::Active),
                to: Status::Active,
                note: Some(note),
                proof: Some("lease link".into()),
                hash: None,
            };
            let messages: Vec<OutboxMessage> = self
                .work_note(
                    &request,
                    now,
                    format!("{} extended the lease in Gatehouse: the VMs are retired at {when}.", record.approver),
                    None,
                )
                .into_iter()
                .collect();
            let write = Write {
                history: vec![history],
                use_token: Some(token.lease_hash()),
                messages,
                ..Write::new(request, expected)
            };
            match self.store.apply(write).await {
                Ok(request) => {
                    tracing::info!(request = %request.id, retire_at = %lease.retire_at, "lease extended");
                    self.signals.messages_owed();
                    self.stamp_retire_at(&request, lease.retire_at).await;
                    return Ok(ExtendOutcome::Extended(self.lease_view(request, true)));
                }
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Stale)
    }

    /// Writes the new end into each server's `gatehouse_retire_at` metadata, so that whoever looks
    /// at the cloud sees it. Best effort: the request's record is the truth the sweeper acts on,
    /// so a failure is logged and changes nothing.
    async fn stamp_retire_at(&self, request: &Request, retire_at: Timestamp) {
        let value = retire_at.to_string();
        for server in request.servers.iter().filter(|s| s.status != "DELETED") {
            let set =
                self.catalog.cloud().set_server_metadata(&request.cloud, &server.id, RETIRE_AT_METADATA_KEY, &value);
            if let Err(e) = set.await {
                crate::metrics::upstream_error(&e);
                tracing::warn!(request = %request.id, server = %server.id, error = %e.chain(), "could not write the new retire time into the server's metadata");
            }
        }
    }

    /// The sweeper's look at an active request that is due: retire it at its end, else mail the
    /// reminder whose time came, with a fresh Extend link. `Some(true)` retired, `Some(false)`
    /// reminded, `None` nothing to do (someone else moved it).
    pub(crate) async fn lease_due(&self, id: &RequestId, now: Timestamp) -> Result<Option<bool>> {
        for _ in 0..4 {
            let Some(mut request) = self.store.get(id).await? else { return Ok(None) };
            if request.status != Status::Active || request.due_at.is_none_or(|d| d > now) {
                return Ok(None);
            }
            let Some(mut lease) = request.retirement.clone() else {
                // Nothing is owed an active request without a lease: stop looking at it.
                let expected = request.version;
                request.due_at = None;
                request.touch(now);
                return match self.store.apply(Write::new(request, expected)).await {
                    Ok(_) | Err(Error::Stale) => Ok(None),
                    Err(e) => Err(e),
                };
            };
            if now >= lease.retire_at {
                let why = format!("the lease ended at {}", lease.retire_at.strftime("%Y-%m-%d %H:%M:%S UTC"));
                self.retire(id, "sweeper", why).await?;
                return Ok(Some(true));
            }
            let reminders = &self.config.leases.reminders;
            let passed = offsets_passed(reminders, lease.retire_at, now);
            let expected = request.version;
            let mut write_tokens = vec![];
            let mut messages = vec![];
            if passed > lease.reminders_sent {
                let link_id = uuid::Uuid::new_v4().simple().to_string();
                let token = self.config.link_key.token_for(&link_id);
                write_tokens.push(TokenRecord {
                    hash: token.lease_hash(),
                    request_id: request.id.clone(),
                    approver: request.requester.email.clone(),
                    expires_at: lease.retire_at,
                    used_at: None,
                    stage: 0,
                    on_behalf_of: None,
                });
                messages.push(OutboxMessage::mail(
                    &request.id,
                    now,
                    MailNotice {
                        to: request.requester.email.clone(),
                        template: MailTemplate::LeaseReminder { link_id },
                    },
                ));
            }
            let reminded = !messages.is_empty();
            lease.reminders_sent = lease.reminders_sent.max(passed);
            request.due_at = Some(next_due(&lease, reminders));
            request.retirement = Some(lease);
            request.touch(now);
            let write = Write { new_tokens: write_tokens, messages, ..Write::new(request, expected) };
            match self.store.apply(write).await {
                Ok(_) => return Ok(reminded.then_some(false)),
                Err(Error::Stale) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LeaseSettings {
        LeaseSettings {
            min: Duration::from_secs(60),
            max_days: 30,
            reminders: vec![Duration::from_secs(7 * DAY_SECS), Duration::from_secs(DAY_SECS)],
            ..LeaseSettings::default()
        }
    }

    #[test]
    fn out_of_range_leases_are_refused_naming_the_field() {
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        let s = settings();
        assert_eq!(lease_at_intake(&s, Some(0), None, now).unwrap_err().invalid_field(), Some("lease_days"));
        assert_eq!(lease_at_intake(&s, Some(31), None, now).unwrap_err().invalid_field(), Some("lease_days"));
        assert_eq!(lease_at_intake(&s, None, Some("tomorrow"), now).unwrap_err().invalid_field(), Some("retire_at"));
        assert_eq!(
            lease_at_intake(&s, None, Some("2026-06-01T12:00:30Z"), now).unwrap_err().invalid_field(),
            Some("retire_at")
        );
        assert_eq!(
            lease_at_intake(&s, None, Some("2026-08-01T12:00:00Z"), now).unwrap_err().invalid_field(),
            Some("retire_at")
        );
        assert_eq!(
            lease_at_intake(&s, Some(2), Some("2026-06-05T12:00:00Z"), now).unwrap_err().invalid_field(),
            Some("retire_at")
        );
        assert_eq!(lease_at_intake(&s, None, None, now).unwrap(), None, "no default, no lease");
    }

    #[test]
    fn reminders_longer_than_the_lease_are_skipped_and_the_rest_come_due_in_order() {
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        let s = settings();
        let lease = lease_at_intake(&s, Some(3), None, now).unwrap().unwrap();
        assert_eq!(lease.retire_at, "2026-06-04T12:00:00Z".parse().unwrap());
        assert_eq!(lease.reminders_sent, 1, "the 7-day reminder would come before the lease began");
        assert_eq!(next_due(&lease, &s.reminders), "2026-06-03T12:00:00Z".parse().unwrap());
        let done = Retirement { reminders_sent: 2, ..lease.clone() };
        assert_eq!(next_due(&done, &s.reminders), lease.retire_at);
        let explicit = lease_at_intake(&s, None, Some("2026-06-20T12:00:00+02:00"), now).unwrap().unwrap();
        assert_eq!(explicit.length_secs, 19 * DAY_SECS - 7200);
        assert_eq!(explicit.reminders_sent, 0);
    }
}
